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
        if ($path !== '/') {   // the database check is the home page's only
            return [404, "not found\n"];
        }
        $lines = ['Hello from ' . (getenv('APP_NAME') ?: 'app')];
        $driver = getenv('DB_DRIVER');
        if ($driver === 'postgres' || $driver === 'mysql') {
            $lines[] = self::database($driver);
        }
        return [200, implode("\n", $lines) . "\n"];
    }

    /** The database the stack wires (PDO, Debian's php-pgsql and php-mysql in the base image). */
    private static function database(string $driver): string
    {
        try {
            $dsn = sprintf('%s:host=%s;port=%s;dbname=%s', $driver === 'postgres' ? 'pgsql' : 'mysql',
                getenv('DB_HOST'), getenv('DB_PORT'), getenv('DB_NAME'));
            // the password comes from the file Swarm mounts, never from the environment itself
            $password = trim((string) @file_get_contents((string) getenv('DB_PASSWORD_FILE')));
            $pdo = new \PDO($dsn, (string) getenv('DB_USER'), $password,
                [\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION, \PDO::ATTR_TIMEOUT => 3]);
            $version = $pdo->query($driver === 'postgres' ? 'SHOW server_version' : 'SELECT VERSION()')->fetchColumn();
            return 'database: ' . ($driver === 'postgres' ? 'PostgreSQL ' : 'MySQL-compatible ') . $version;
        } catch (\Throwable $e) {
            // the page says what failed without its details (they may name hosts or users)
            error_log('database check failed: ' . $e->getMessage());
            return 'database: not reachable (' . get_class($e) . "; see the app's log)";
        }
    }
}
