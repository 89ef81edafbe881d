"""A DNS server on 127.0.0.1 for the tests: answers A queries from a table and remembers every question."""

from __future__ import annotations

import ipaddress
import socket
import threading

from mitmproxy import dns


class DnsServer:
    """A UDP DNS server on 127.0.0.1 answering A queries from `answers` (127.0.0.1 for any other name) and
    remembering every question."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.questions: list[tuple[str, int]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.DNSMessage.unpack(data)
            question = query.questions[0]
            self.questions.append((question.name, question.type))
            address = ipaddress.IPv4Address(self.answers.get(question.name, "127.0.0.1"))
            answers = [dns.ResourceRecord.A(question.name, address)] if question.type == 1 else []
            self.sock.sendto(query.succeed(answers).packed, peer)

    def close(self) -> None:
        self.sock.close()
