"""The servers the test suite and the benchmark both run: real parts, not mocks.

    testing.samba       a Samba AD DC on loopback, shared by every test process on the machine
    testing.fake_entra  an HTTPS stand-in for Microsoft's login and Graph (spoken to through real msal)
    testing.smtp        an aiosmtpd server that records what it accepts

The pytest fixtures over them live in tests/fixtures_*.py; bench/ imports these modules directly.
"""
