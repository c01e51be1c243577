/* The pod sandbox ("pause") container for the test node: holds the pod's namespaces, reaps the
 * zombies of processes that share its PID namespace, and exits cleanly on SIGTERM/SIGINT.
 * Built static (`gcc -Os -static`) by scripts/images.sh and committed FROM scratch. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { _exit(sig == SIGTERM || sig == SIGINT ? 0 : 1); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction term = {.sa_handler = stop};
  struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  if (getpid() != 1) {
    /* Fine for a smoke test, but as a sandbox it must be PID 1 to reap orphans. */
    (void)write(2, "pause: warning: not running as PID 1\n", 37);
  }
  if (sigaction(SIGINT, &term, NULL) < 0 || sigaction(SIGTERM, &term, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    return 1;
  }
  for (;;) pause();
}
