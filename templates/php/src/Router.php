<?php
declare(strict_types=1);

namespace App;

final class Router
{
    /** @return array{int, string} */
    public static function handle(string $path): array
    {
        if ($path === '/healthz') {
            return [200, "ok\n"];
        }
        return [200, 'Hello from ' . (getenv('APP_NAME') ?: 'app') . "\n"];
    }
}
