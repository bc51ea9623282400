/* tspod-helper: the static native helper of tspod (see PLAN.md).
 *
 *   tspod-helper run <plan>        start a pod as the plan says; exit with its code
 *   tspod-helper enter --pid=... -- CMD [ARG...]
 *
 * Its own failures: one line on stderr starting "tspod-helper: ", exit 254.
 */
#include "helper.h"

#include <string.h>

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return run_main(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "enter"))
		return enter_main(argc, argv);
	die("usage: tspod-helper run <plan> | tspod-helper enter --pid=<pid> [options] -- CMD [ARG...]");
}
