/* udp-answer PORT TEXT: a UDP server for test/network-ports.test.ts (busybox-static
 * has none: its nc is TCP only). It binds 0.0.0.0:PORT and answers every datagram
 * with "TEXT peer=ADDR\n", ADDR being the sender's address as the server sees it.
 * Built static by the test and put into a test image.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: udp-answer PORT TEXT\n");
		return 2;
	}
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("udp-answer: bind");
		return 1;
	}
	printf("udp-answer: listening on %s\n", argv[1]);
	fflush(stdout);
	for (;;) {
		char buf[512], out[600];
		struct sockaddr_in peer;
		socklen_t len = sizeof peer;
		if (recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&peer, &len) < 0)
			continue;
		int n = snprintf(out, sizeof out, "%s peer=%s\n", argv[2], inet_ntoa(peer.sin_addr));
		if (n > 0)
			sendto(s, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1, 0, (struct sockaddr *)&peer, len);
	}
}
