"""Bench addon for mitmproxy: stream both bodies (so SSE and large bodies are not buffered,
as in bot-bottle's proxy) and connect the bench's made-up host names to loopback, keeping
SNI and certificate verification on the host name."""


class Bench:
    def server_connect(self, data):
        _host, port = data.server.address
        data.server.address = ("127.0.0.1", port)

    def requestheaders(self, flow):
        flow.request.stream = True

    def responseheaders(self, flow):
        flow.response.stream = True


addons = [Bench()]
