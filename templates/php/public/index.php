<?php
// Front controller, Laravel-style: every request goes through here to the router.
declare(strict_types=1);

require __DIR__ . '/../src/Router.php';

[$status, $body] = App\Router::handle(parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/');
http_response_code($status);
header('Content-Type: text/plain; charset=utf-8');
echo $body;
