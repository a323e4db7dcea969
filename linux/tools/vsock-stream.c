// SPDX-License-Identifier: GPL-2.0-only
/* vsock-stream: skeleton. */
#include <stdio.h>

int main(void)
{
	puts("vsock-stream: not yet");
	return 0;
}
