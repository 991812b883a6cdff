<?php
// Minimal test runner: `composer test` (add PHPUnit when the app grows).
declare(strict_types=1);

require __DIR__ . '/../src/Router.php';

[$status, $body] = App\Router::handle('/healthz');
if ($status !== 200 || $body !== "ok\n") {
    fwrite(STDERR, "health check answer is wrong\n");
    exit(1);
}
echo "ok\n";
