"""The HTTP/1 rules of docs/HTTP1.md as data (Python 3 stdlib only).

Each case is (rule id, raw bytes, expectation). The rule ids are the ones of
docs/HTTP1.md; tests/http1/check_rules.py checks that every documented rule
appears in the tests named for it.

Request cases (REQUEST_CASES) are a client's bytes on a fresh connection:
    reject(status)   weir answers `status` itself, with Connection: close,
                     closes the connection, and forwards nothing;
    forward(...)     weir forwards exactly one request, which the recording
                     origin (tests/http1/h1origin.py) checks for canonical
                     form; the keyword arguments say what it must contain.

Response cases (RESPONSE_CASES) are an upstream's bytes in answer to one
request (GET unless method= says otherwise):
    bad_gateway()    the client gets weir's 502, and weir closes that upstream
                     connection (it is never reused);
    respond(...)     the client gets the response described; reuse= says
                     whether weir keeps the upstream connection for the next
                     request;
    truncated()      the response head reached the client but its body cannot
                     be completed: weir closes the client connection (a
                     truncated message, never a wrong one) and the upstream
                     connection.

The same request and response bytes feed the llhttp differential check
(tests/http1/llhttp_diff.py).
"""

H = b"Host: a\r\n"
POST = b"POST /p HTTP/1.1\r\nHost: a\r\n"
TEC = b"Transfer-Encoding: chunked\r\n"
BODY = b"5\r\nhello\r\n0\r\n\r\n"


def reject(status):
    return ("reject", status)


def forward(**kw):
    """Checks on the forwarded request: method, target, host, body (decoded
    bytes), framing ('none' | 'length' | 'chunked'), headers (list of
    (name, value) that must be present, in that order among themselves),
    absent (names that must not be there)."""
    return ("forward", kw)


def bad_gateway():
    return ("bad_gateway", {})


def respond(**kw):
    """status, body, headers (present), absent (names), reuse (bool),
    close (client connection closed after it), chunked (client framing)."""
    return ("respond", kw)


def truncated():
    return ("truncated", {})


def chunk_post(body_bytes, extra=b""):
    return POST + extra + TEC + b"\r\n" + body_bytes


REQUEST_CASES = [
    # ---- Content-Length and Transfer-Encoding together -------------------
    ("REQ-CLTE", POST + b"Content-Length: 5\r\n" + TEC + b"\r\n" + BODY, reject(400)),
    ("REQ-CLTE", POST + TEC + b"Content-Length: 5\r\n\r\n" + BODY, reject(400)),
    ("REQ-CLTE", POST + TEC + b"Content-Length: 0\r\n\r\n" + BODY, reject(400)),
    ("REQ-CLTE", POST + b"Content-Length: 15\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + BODY,
     reject(400)),
    # ---- Transfer-Encoding obfuscations (TE.TE) --------------------------
    ("REQ-TE-CASE", chunk_post(BODY).replace(b"chunked", b"ChUnKeD"),
     forward(body=b"hello", framing="chunked")),
    ("REQ-TE-CASE", chunk_post(BODY).replace(b"Transfer-Encoding", b"tRANSFER-eNCODING"),
     forward(body=b"hello", framing="chunked")),
    ("REQ-TE-OWS", chunk_post(BODY).replace(b": chunked", b":\t chunked \t"),
     forward(body=b"hello", framing="chunked")),
    ("REQ-TE-OWS", chunk_post(BODY).replace(b": chunked", b": , chunked,"),
     forward(body=b"hello", framing="chunked")),
    ("REQ-TE-OWS", POST + b"Transfer-Encoding:\r\n" + TEC + b"\r\n" + BODY,
     forward(body=b"hello", framing="chunked")),
    ("REQ-TE-DUP", POST + TEC + TEC + b"\r\n" + BODY, reject(400)),
    ("REQ-TE-DUP", chunk_post(BODY).replace(b": chunked", b": chunked, chunked"), reject(400)),
    ("REQ-TE-NOTLAST", chunk_post(BODY).replace(b": chunked", b": chunked, gzip"), reject(400)),
    ("REQ-TE-NOTLAST", POST + TEC + b"Transfer-Encoding: gzip\r\n\r\n" + BODY, reject(400)),
    ("REQ-TE-NOTLAST", POST + b"Transfer-Encoding: gzip\r\n\r\nhello", reject(400)),
    ("REQ-TE-NOTLAST", POST + b"Transfer-Encoding: identity\r\n\r\nhello", reject(400)),
    ("REQ-TE-NOTLAST", POST + b"Transfer-Encoding: xchunked\r\n\r\n" + BODY, reject(400)),
    ("REQ-TE-NOTLAST", POST + b"Transfer-Encoding: chunkedx\r\n\r\n" + BODY, reject(400)),
    ("REQ-TE-NOTLAST", POST + b"Transfer-Encoding:\r\n\r\n" + BODY, reject(400)),
    ("REQ-TE-UNKNOWN", chunk_post(BODY).replace(b": chunked", b": gzip, chunked"), reject(501)),
    ("REQ-TE-UNKNOWN", POST + b"Transfer-Encoding: foo\r\n" + TEC + b"\r\n" + BODY, reject(501)),
    ("REQ-TE-JUNK", chunk_post(BODY).replace(b": chunked", b": \"chunked\""), reject(400)),
    ("REQ-TE-JUNK", chunk_post(BODY).replace(b": chunked", b": chunked;q=1"), reject(400)),
    ("REQ-TE-JUNK", chunk_post(BODY).replace(b": chunked", b": chunked\x0b"), reject(400)),
    ("REQ-TE-JUNK", chunk_post(BODY).replace(b": chunked", b": chunked\x00"), reject(400)),
    ("REQ-TE-JUNK", chunk_post(BODY).replace(b": chunked", b": chunk ed"), reject(400)),
    ("REQ-TE-JUNK", chunk_post(BODY).replace(b": chunked", b": chunked\xff"), reject(400)),
    ("REQ-TE-NAME", chunk_post(BODY).replace(b"Transfer-Encoding:", b"Transfer-Encoding :"),
     reject(400)),
    ("REQ-TE-NAME", chunk_post(BODY).replace(b"Transfer-Encoding:", b"Transfer-Encoding\t:"),
     reject(400)),
    ("REQ-TE-NAME", chunk_post(BODY).replace(b"Transfer-Encoding: chunked",
                                             b"Transfer-Encoding:\r\n chunked"), reject(400)),
    ("REQ-TE-NAME", POST + b"X: y\r\n Transfer-Encoding: chunked\r\n\r\n" + BODY, reject(400)),
    ("REQ-TE-NAME", chunk_post(BODY).replace(b"Transfer-Encoding", b"Transfer_Encoding"),
     reject(400)),
    ("REQ-TE-HTTP10", b"POST /p HTTP/1.0\r\n" + TEC + b"\r\n" + BODY, reject(400)),
    ("REQ-TE-HTTP10", b"POST /p HTTP/1.0\r\nContent-Length: 15\r\n" + TEC + b"\r\n" + BODY,
     reject(400)),
    # ---- Content-Length --------------------------------------------------
    ("REQ-CL-SIGN", POST + b"Content-Length: +5\r\n\r\nhello", reject(400)),
    ("REQ-CL-SIGN", POST + b"Content-Length: -5\r\n\r\nhello", reject(400)),
    ("REQ-CL-WS", POST + b"Content-Length: 1 0\r\n\r\nhelloworld", reject(400)),
    ("REQ-CL-WS", POST + b"Content-Length: 5\x0b\r\n\r\nhello", reject(400)),
    ("REQ-CL-OWS", POST + b"Content-Length: \t 5 \t\r\n\r\nhello",
     forward(body=b"hello", framing="length", headers=[("Content-Length", "5")])),
    ("REQ-CL-ZEROS", POST + b"Content-Length: 0005\r\n\r\nhello",
     forward(body=b"hello", framing="length", headers=[("Content-Length", "5")])),
    ("REQ-CL-ZEROS", POST + b"Content-Length: 00000000000000000000000000005\r\n\r\nhello",
     forward(body=b"hello", framing="length", headers=[("Content-Length", "5")])),
    ("REQ-CL-LIST", POST + b"Content-Length: 5, 5\r\n\r\nhello",
     forward(body=b"hello", framing="length", headers=[("Content-Length", "5")])),
    ("REQ-CL-LIST", POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
     forward(body=b"hello", framing="length", headers=[("Content-Length", "5")])),
    ("REQ-CL-LIST", POST + b"Content-Length: 5, 6\r\n\r\nhello!", reject(400)),
    ("REQ-CL-LIST", POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", reject(400)),
    ("REQ-CL-LIST", POST + b"Content-Length: 6\r\nContent-Length: 5\r\n\r\nhello!", reject(400)),
    ("REQ-CL-LIST", POST + b"Content-Length: 5,\r\n\r\nhello", reject(400)),
    ("REQ-CL-LIST", POST + b"Content-Length: ,5\r\n\r\nhello", reject(400)),
    ("REQ-CL-OVERFLOW", POST + b"Content-Length: 9007199254740993\r\n\r\nhello", reject(400)),
    ("REQ-CL-OVERFLOW", POST + b"Content-Length: 18446744073709551621\r\n\r\nhello", reject(400)),
    ("REQ-CL-OVERFLOW", POST + b"Content-Length: 99999999999999999999999999999\r\n\r\nhello",
     reject(400)),
    ("REQ-CL-SYNTAX", POST + b"Content-Length: 0x5\r\n\r\nhello", reject(400)),
    ("REQ-CL-SYNTAX", POST + b"Content-Length: 5.0\r\n\r\nhello", reject(400)),
    ("REQ-CL-SYNTAX", POST + b"Content-Length: abc\r\n\r\nhello", reject(400)),
    ("REQ-CL-SYNTAX", POST + b"Content-Length:\r\n\r\nhello", reject(400)),
    ("REQ-CL-SYNTAX", POST + b"Content-Length: \"5\"\r\n\r\nhello", reject(400)),
    ("REQ-CL-NAME", POST + b"Content_Length: 5\r\n\r\nhello", reject(400)),
    ("REQ-CL-NAME", POST + b"content_length: 5\r\n\r\nhello", reject(400)),
    ("REQ-CL-NAME", POST + b"Content-Length : 5\r\n\r\nhello", reject(400)),
    ("REQ-CL-ZERO", POST + b"Content-Length: 0\r\n\r\n",
     forward(body=b"", framing="length", headers=[("Content-Length", "0")])),
    ("REQ-CONN-FRAMING", POST + b"Connection: Content-Length\r\nContent-Length: 5\r\n\r\nhello",
     reject(400)),
    ("REQ-CONN-FRAMING", chunk_post(BODY, b"Connection: close, transfer-encoding\r\n"),
     reject(400)),
    ("REQ-CONN-FRAMING", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n", reject(400)),
    # ---- chunked coding -------------------------------------------------
    ("REQ-CHUNK-OVERFLOW", chunk_post(b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-OVERFLOW", chunk_post(b"10000000000000005\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-OVERFLOW", chunk_post(b"20000000000001\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-HEX", chunk_post(b"0005\r\nhello\r\nA\r\n0123456789\r\n000\r\n\r\n"),
     forward(body=b"hello0123456789", framing="chunked")),
    ("REQ-CHUNK-SYNTAX", chunk_post(b"0x5\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-SYNTAX", chunk_post(b"+5\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-SYNTAX", chunk_post(b"-1\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-SYNTAX", chunk_post(b"zz\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-SYNTAX", chunk_post(b"\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-WS", chunk_post(b" 5\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-WS", chunk_post(b"5 \r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-WS", chunk_post(b"5\t\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-WS", chunk_post(b"5 ;a\r\nhello\r\n0\r\n\r\n"),
     forward(body=b"hello", framing="chunked")),
    ("REQ-CHUNK-EXT", chunk_post(b"5;a=b;c\r\nhello\r\n0;last\r\n\r\n"),
     forward(body=b"hello", framing="chunked")),
    ("REQ-CHUNK-EXT", chunk_post(b"5 ; a = \"q\\\"u;o\\\\te\" ;b\r\nhello\r\n0\r\n\r\n"),
     forward(body=b"hello", framing="chunked")),
    ("REQ-CHUNK-EXT-BAD", chunk_post(b"5;\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-EXT-BAD", chunk_post(b"5;a=\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-EXT-BAD", chunk_post(b"5;a=\"b\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-EXT-BAD", chunk_post(b"5;a=b\x00\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-EXT-BAD", chunk_post(b"5;a\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-EXT-BAD", chunk_post(b"5;" + b"a" * 5000 + b"\r\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-LF", chunk_post(b"5\nhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-LF", chunk_post(b"5\r\nhello\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-LF", chunk_post(b"5\r\nhello\r\n0\n\r\n"), reject(400)),
    ("REQ-CHUNK-LF", chunk_post(b"5\r\nhello\r\n0\r\n\n"), reject(400)),
    ("REQ-CHUNK-CR", chunk_post(b"5\r\rhello\r\n0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-CR", chunk_post(b"5\r\nhello\rX0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-DATA", chunk_post(b"5\r\nhelloXX0\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-DATA", chunk_post(b"5\r\nhell\r\n0\r\n\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-TRAILER", chunk_post(b"5\r\nhello\r\n0\r\nX-T: 1\r\nY:\r\n\r\n"),
     forward(body=b"hello", framing="chunked", absent=["X-T", "Y"])),
    ("REQ-CHUNK-TRAILER", chunk_post(b"5\r\nhello\r\n0\r\nContent-Length: 9\r\n"
                                     b"Transfer-Encoding: gzip\r\n\r\n"),
     forward(body=b"hello", framing="chunked")),
    ("REQ-CHUNK-TRAILER-BAD", chunk_post(b"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-TRAILER-BAD", chunk_post(b"5\r\nhello\r\n0\r\nX : a\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-TRAILER-BAD", chunk_post(b"5\r\nhello\r\n0\r\nX: a\x01\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-TRAILER-BAD", chunk_post(b"5\r\nhello\r\n0\r\nX\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-TRAILER-BAD", chunk_post(b"5\r\nhello\r\n0\r\n X: a\r\n\r\n"), reject(400)),
    ("REQ-CHUNK-LIMIT", chunk_post(b"5\r\nhello\r\n0\r\n" + b"X: " + b"v" * 17000 + b"\r\n\r\n"),
     reject(400)),
    # ---- field syntax -----------------------------------------------------
    ("REQ-OBSFOLD", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", reject(400)),
    ("REQ-OBSFOLD", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", reject(400)),
    ("REQ-WS-COLON", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", reject(400)),
    ("REQ-WS-COLON", b"GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n", reject(400)),
    ("REQ-WS-FIRST", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", reject(400)),
    ("REQ-WS-FIRST", b"GET / HTTP/1.1\r\n\tX: y\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-NAME-TOKEN", b"GET / HTTP/1.1\r\nHost: a\r\nX@A: b\r\n\r\n", reject(400)),
    ("REQ-NAME-TOKEN", b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", reject(400)),
    ("REQ-NAME-TOKEN", b"GET / HTTP/1.1\r\nHost: a\r\nX\x80A: b\r\n\r\n", reject(400)),
    ("REQ-NAME-TOKEN", b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", reject(400)),
    ("REQ-NAME-TOKEN", b"GET / HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n", reject(400)),
    ("REQ-NAME-TOKEN", b"GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n", reject(400)),
    ("REQ-VALUE-CTL", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", reject(400)),
    ("REQ-VALUE-CTL", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", reject(400)),
    ("REQ-VALUE-CTL", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\nc\r\n\r\n", reject(400)),
    ("REQ-VALUE-CTL", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n", reject(400)),
    ("REQ-VALUE-CTL", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n", reject(400)),
    ("REQ-VALUE-CTL", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x1bc\r\n\r\n", reject(400)),
    ("REQ-VALUE-OBSTEXT", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \xe2\x82\xac b\xff\r\n\r\n",
     forward(headers=[("X-A", "\xe2\x82\xac b\xff")])),
    ("REQ-VALUE-OWS", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \t b \t c \t\r\nX-E:   \r\n\r\n",
     forward(headers=[("X-A", "b \t c"), ("X-E", "")])),
    ("REQ-LINE-LF", b"GET / HTTP/1.1\nHost: a\r\n\r\n", reject(400)),
    ("REQ-LINE-LF", b"GET / HTTP/1.1\r\nHost: a\n\r\n", reject(400)),
    ("REQ-LINE-LF", b"GET / HTTP/1.1\r\nHost: a\r\n\n", reject(400)),
    ("REQ-LINE-LF", b"GET / HTTP/1.1\nHost: a\n\n", reject(400)),
    ("REQ-LINE-CR", b"GET / HTTP/1.1\r\rHost: a\r\n\r\n", reject(400)),
    ("REQ-LINE-CR", b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", reject(400)),
    ("REQ-LINE-CR", b"GET / HTTP/1.1\r\nHost: a\r\n\rX", reject(400)),
    ("REQ-LEADING-CRLF", b"\r\nGET /l HTTP/1.1\r\nHost: a\r\n\r\n", forward(target="/l")),
    ("REQ-LEADING-CRLF", b"\r\n\r\nGET /l HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-LEADING-CRLF", b"\nGET /l HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    # ---- request line -------------------------------------------------------
    ("REQ-METHOD", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-METHOD", b"G\x80T / HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-METHOD", b"GE\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-METHOD", b"get /m HTTP/1.1\r\nHost: a\r\n\r\n", forward(method="get", target="/m")),
    ("REQ-METHOD", b"PURGE /m HTTP/1.1\r\nHost: a\r\n\r\n", forward(method="PURGE", target="/m")),
    ("REQ-CONNECT", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", reject(501)),
    ("REQ-LINE-SP", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-LINE-SP", b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-LINE-SP", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-LINE-SP", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-LINE-SP", b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-VERSION", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", reject(505)),
    ("REQ-VERSION", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", reject(505)),
    ("REQ-VERSION", b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", reject(505)),
    ("REQ-VERSION", b"GET / http/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-VERSION", b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-VERSION", b"GET / HTTP/1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-VERSION", b"GET /\r\n\r\n", reject(400)),
    ("REQ-LIMITS", b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: a\r\n\r\n", reject(414)),
    ("REQ-LIMITS", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 16400 + b"\r\n\r\n", reject(431)),
    ("REQ-LIMITS", b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 100 + b"\r\n", reject(431)),
    # ---- request-target ----------------------------------------------------
    ("REQ-TARGET-ORIGIN", b"GET /a/b%20c?d=e&f=/g HTTP/1.1\r\nHost: a\r\n\r\n",
     forward(target="/a/b%20c?d=e&f=/g")),
    ("REQ-TARGET-ORIGIN", b"GET //x/../y HTTP/1.1\r\nHost: a\r\n\r\n", forward(target="//x/../y")),
    ("REQ-TARGET-ABSOLUTE", b"GET http://b.example/p?q HTTP/1.1\r\nHost: b.example\r\n\r\n",
     forward(target="/p?q", host="b.example")),
    ("REQ-TARGET-ABSOLUTE", b"GET HTTPS://b.example:8443 HTTP/1.1\r\nHost: b.example:8443\r\n\r\n",
     forward(target="/", host="b.example:8443")),
    ("REQ-TARGET-ABSOLUTE-BAD", b"GET ftp://b/ HTTP/1.1\r\nHost: b\r\n\r\n", reject(400)),
    ("REQ-TARGET-ABSOLUTE-BAD", b"GET http://u@b/ HTTP/1.1\r\nHost: b\r\n\r\n", reject(400)),
    ("REQ-TARGET-ABSOLUTE-BAD", b"GET http:///p HTTP/1.1\r\nHost: b\r\n\r\n", reject(400)),
    ("REQ-TARGET-ABSOLUTE-BAD", b"GET http://b:99999/ HTTP/1.1\r\nHost: b\r\n\r\n", reject(400)),
    ("REQ-TARGET-ABSOLUTE-BAD", b"GET http://b?q HTTP/1.1\r\nHost: b\r\n\r\n", reject(400)),
    ("REQ-TARGET-ASTERISK", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
     forward(method="OPTIONS", target="*")),
    ("REQ-TARGET-ASTERISK", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-TARGET-AUTHORITY", b"GET a:443 HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-TARGET-AUTHORITY", b"GET a HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-TARGET-CHARS", b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-TARGET-CHARS", b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-TARGET-CHARS", b"GET /a\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-TARGET-CHARS", b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-TARGET-FRAGMENT", b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-TARGET-FRAGMENT", b"GET /a?b=c#/../d HTTP/1.1\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-TARGET-FRAGMENT", b"GET http://b/a#b HTTP/1.1\r\nHost: b\r\n\r\n", reject(400)),
    # ---- Host --------------------------------------------------------------
    ("REQ-HOST-MISSING", b"GET / HTTP/1.1\r\n\r\n", reject(400)),
    ("REQ-HOST-MISSING", b"GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", reject(400)),
    ("REQ-HOST-MISSING", b"GET http://b/ HTTP/1.1\r\n\r\n", reject(400)),
    ("REQ-HOST-MISSING", b"GET /h10 HTTP/1.0\r\n\r\n", forward(target="/h10", host="")),
    ("REQ-HOST-DUP", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", reject(400)),
    ("REQ-HOST-DUP", b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", reject(400)),
    ("REQ-HOST-DUP", b"GET / HTTP/1.1\r\nHost: a\r\nHost:\r\n\r\n", reject(400)),
    ("REQ-HOST-DUP", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", reject(400)),
    ("REQ-HOST-INVALID", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", reject(400)),
    ("REQ-HOST-INVALID", b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", reject(400)),
    ("REQ-HOST-INVALID", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", reject(400)),
    ("REQ-HOST-INVALID", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", reject(400)),
    ("REQ-HOST-INVALID", b"GET / HTTP/1.1\r\nHost: a:\r\n\r\n", reject(400)),
    ("REQ-HOST-INVALID", b"GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", reject(400)),
    ("REQ-HOST-INVALID", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", reject(400)),
    ("REQ-HOST-INVALID", b"GET / HTTP/1.1\r\nHost: a\x80\r\n\r\n", reject(400)),
    ("REQ-HOST-EMPTY", b"GET /he HTTP/1.1\r\nHost:\r\n\r\n", forward(target="/he", host="")),
    ("REQ-HOST-ABSOLUTE", b"GET http://abs.example/x HTTP/1.1\r\nHost: other.example\r\n\r\n",
     forward(target="/x", host="abs.example")),
    # ---- hop-by-hop and upgrade -------------------------------------------
    ("REQ-HOP", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
                b"Keep-Alive: 5\r\nTE: trailers\r\nTrailer: X-T\r\nProxy-Authorization: x\r\n"
                b"Proxy-Connection: keep-alive\r\nX-Keep: 2\r\n\r\n",
     forward(headers=[("X-Keep", "2")],
             absent=["Connection", "X-Drop", "Keep-Alive", "TE", "Trailer", "Proxy-Authorization",
                     "Proxy-Connection"])),
    ("REQ-UPGRADE", b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    b"Sec-WebSocket-Key: x\r\n\r\n",
     forward(target="/ws", absent=["Connection", "Upgrade"])),
    ("REQ-EXPECT-OTHER", POST + b"Expect: 200-ok\r\nContent-Length: 5\r\n\r\nhello", reject(417)),
    ("REQ-EXPECT-OTHER", POST + b"Expect: 100-continue, foo\r\nContent-Length: 5\r\n\r\nhello",
     reject(417)),
    # ---- canonical forwarding ------------------------------------------------
    ("FWD-FRAMING", b"GET /g HTTP/1.1\r\nHost: a\r\n\r\n", forward(framing="none")),
    ("FWD-FRAMING", POST + b"Content-Length: 5\r\n\r\nhello", forward(framing="length", body=b"hello")),
    ("FWD-FRAMING", chunk_post(BODY), forward(framing="chunked", body=b"hello")),
    ("FWD-FRAMING", b"GET /g HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
     forward(framing="length", body=b"hello")),
    ("FWD-CHUNKED", chunk_post(b"1\r\na\r\n2;x=y\r\nbc\r\n00000010\r\n" + b"d" * 16 +
                               b"\r\n0\r\nX-T: v\r\n\r\n"),
     forward(framing="chunked", body=b"abc" + b"d" * 16, absent=["X-T"])),
    ("FWD-VERSION", b"GET /v HTTP/1.0\r\nHost: a\r\n\r\n", forward(target="/v")),
    ("FWD-HEADERS", b"GET /f HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nX-Forwarded-For: 10.0.0.1\r\n"
                    b"Via: 1.0 fred\r\nX-Forwarded-Proto: https\r\nx-two: 2\r\n\r\n",
     forward(headers=[("X-One", "1"), ("X-Forwarded-For", "10.0.0.1, 127.0.0.1"),
                      ("Via", "1.0 fred, 1.1 weir"), ("x-two", "2"),
                      ("X-Forwarded-Proto", "http")])),
]


RESPONSE_CASES = [
    # (id, upstream bytes, expectation[, method[, close: the upstream closes after it]])
    ("RSP-CLTE", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n" + TEC + b"\r\n" + BODY, bad_gateway()),
    ("RSP-CLTE", b"HTTP/1.1 200 OK\r\n" + TEC + b"Content-Length: 5\r\n\r\n" + BODY, bad_gateway()),
    ("RSP-CL-LIST", b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello",
     respond(status=200, body=b"hello", headers=[("Content-Length", "5")], reuse=True)),
    ("RSP-CL-LIST", b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!", bad_gateway()),
    ("RSP-CL-LIST", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
     bad_gateway()),
    ("RSP-CL-SYNTAX", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello", bad_gateway()),
    ("RSP-CL-SYNTAX", b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", bad_gateway()),
    ("RSP-CL-SYNTAX", b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello", bad_gateway()),
    ("RSP-CL-SYNTAX", b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nhello",
     bad_gateway()),
    ("RSP-TE-UNKNOWN", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello", bad_gateway()),
    ("RSP-TE-UNKNOWN", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + BODY,
     bad_gateway()),
    ("RSP-TE-UNKNOWN", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" + BODY,
     bad_gateway()),
    ("RSP-TE-DUP", b"HTTP/1.1 200 OK\r\n" + TEC + TEC + b"\r\n" + BODY, bad_gateway()),
    ("RSP-TE-HTTP10", b"HTTP/1.0 200 OK\r\n" + TEC + b"\r\n" + BODY, bad_gateway()),
    ("RSP-STATUS", b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-STATUS", b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-STATUS", b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-STATUS", b"HTTP/1.1 600 High\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-STATUS", b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-STATUS", b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-STATUS", b"ICY 200 OK\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-STATUS", b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-STATUS", b"HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-STATUS", b"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-STATUS", b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-SYNTAX", b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-SYNTAX", b"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-SYNTAX", b"HTTP/1.1 200 OK\r\nX-A: b\x00\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-SYNTAX", b"HTTP/1.1 200 OK\r\nX-A: b\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-SYNTAX", b"HTTP/1.1 200 OK\r\nX@A: b\r\nContent-Length: 0\r\n\r\n", bad_gateway()),
    ("RSP-SYNTAX", b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 0\r\n\r\n",
     bad_gateway()),
    ("RSP-1XX", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     respond(status=200, body=b"ok", interim=[], reuse=True)),
    ("RSP-1XX-LIMIT", b"HTTP/1.1 102 Processing\r\n\r\n" * 16 +
                      b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     respond(status=200, body=b"ok", interim=[], reuse=True)),
    ("RSP-1XX-LIMIT", b"HTTP/1.1 102 Processing\r\n\r\n" * 17 +
                      b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", bad_gateway()),
    ("RSP-101", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade"
                b"\r\n\r\n", bad_gateway()),
    ("RSP-HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 0005\r\n\r\n",
     respond(status=200, body=b"", headers=[("Content-Length", "5")], reuse=True), "HEAD"),
    ("RSP-HEAD", b"HTTP/1.1 200 OK\r\n" + TEC + b"\r\n",
     respond(status=200, body=b"", absent=["Transfer-Encoding", "Content-Length"], reuse=True),
     "HEAD"),
    ("RSP-HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
     respond(status=200, body=b"", headers=[("Content-Length", "5")], reuse=False), "HEAD"),
    ("RSP-204", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
     respond(status=204, body=b"", absent=["Content-Length", "Transfer-Encoding"], reuse=True)),
    ("RSP-204", b"HTTP/1.1 204 No Content\r\n" + TEC + b"\r\n",
     respond(status=204, body=b"", absent=["Content-Length", "Transfer-Encoding"], reuse=True)),
    ("RSP-204", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
     respond(status=204, body=b"", reuse=False)),
    ("RSP-304", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\n",
     respond(status=304, body=b"", headers=[("Content-Length", "5"), ("ETag", "\"x\"")],
             reuse=True)),
    ("RSP-304", b"HTTP/1.1 304 Not Modified\r\n" + TEC + b"\r\n",
     respond(status=304, body=b"", absent=["Transfer-Encoding"], reuse=True)),
    ("RSP-304", b"HTTP/1.1 304 Not Modified\r\n\r\n0\r\n\r\n",
     respond(status=304, body=b"", reuse=False)),
    ("RSP-CLOSE-DELIM", b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
     respond(status=200, body=b"until the end", chunked=True, reuse=False), "GET", True),
    ("RSP-CHUNK-BAD", b"HTTP/1.1 200 OK\r\n" + TEC + b"\r\n5\r\nhelloXX0\r\n\r\n", truncated()),
    ("RSP-CHUNK-BAD", b"HTTP/1.1 200 OK\r\n" + TEC + b"\r\nzz\r\nhello\r\n0\r\n\r\n", truncated()),
    ("RSP-CHUNK-BAD", b"HTTP/1.1 200 OK\r\n" + TEC + b"\r\n5\r\nhello\r\n0\r\nX : y\r\n\r\n",
     truncated()),
    ("RSP-CHUNK", b"HTTP/1.1 200 OK\r\n" + TEC + b"\r\n00005;ext=\"x\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
     respond(status=200, body=b"hello", chunked=True, reuse=True)),
    ("RSP-TRAILING", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"
                     b"Content-Length: 0\r\n\r\n", respond(status=200, body=b"ok", reuse=False)),
    ("RSP-CONN-CLOSE", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
     respond(status=200, body=b"ok", reuse=False, absent=["Connection"])),
    ("RSP-CONN-CLOSE", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
     respond(status=200, body=b"ok", reuse=False)),
    ("RSP-HOP", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Hop\r\nX-Hop: 1\r\n"
                b"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nTrailer: X-T\r\n"
                b"Upgrade: h2c\r\nX-Keep: 2\r\n\r\nok",
     respond(status=200, body=b"ok", headers=[("X-Keep", "2")],
             absent=["Connection", "X-Hop", "Keep-Alive", "Proxy-Authenticate", "Trailer",
                     "Upgrade"], reuse=True)),
    ("RSP-LIMITS", b"HTTP/1.1 200 OK\r\nX: " + b"v" * 17000 + b"\r\nContent-Length: 0\r\n\r\n",
     bad_gateway()),
    ("RSP-LIMITS", b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"Content-Length: 0\r\n\r\n",
     bad_gateway()),
    ("RSP-REUSE", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     respond(status=200, body=b"ok", reuse=True)),
]


def request_inputs():
    """(name, bytes) of every request case, for the differential check."""
    out = []
    for i, (rid, raw, _exp) in enumerate(REQUEST_CASES):
        out.append(("%s.%d" % (rid, i), raw))
    return out


def response_inputs():
    out = []
    for i, case in enumerate(RESPONSE_CASES):
        if len(case) > 3 and case[3] == "HEAD":
            continue  # a HEAD response's framing depends on the request
        out.append(("%s.%d" % (case[0], i), case[1]))
    return out
