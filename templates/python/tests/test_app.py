import unittest

from app.main import wsgi_app


class AppTest(unittest.TestCase):
    def test_health_answers_ok(self):
        seen = {}
        body = b"".join(wsgi_app({"PATH_INFO": "/healthz"}, lambda s, h: seen.setdefault("status", s)))
        self.assertEqual((seen["status"], body), ("200 OK", b"ok\n"))


if __name__ == "__main__":
    unittest.main()
