"""The session cookie's name: auth sets the cookie, the cross-site guard looks for it."""

COOKIE_NAME = "studyrag_auth"
