#!/usr/bin/python3
"""cpu_min.py - the fastest of N runs of one command, in CPU and in wall time (bench/dmarc/run uses it).

  cpu_min.py RUNS COMMAND [ARG...]

Runs COMMAND RUNS times (stdout and stderr to /dev/null) and prints "CPU_MIN_S WALL_MIN_S CPU_MEDIAN_S": CPU is
the user + system time of the command alone, from wait4(2)'s rusage (microseconds, unlike /usr/bin/time's
hundredths); the minimum is the figure least disturbed by other load on a shared machine. Fails when the
command cannot be started or exits non-zero.

The command is started with posix_spawn(3) (vfork and exec, as a shell or Postfix's spawn would), not with
os.fork(): a forked Python child is a copy of the interpreter, and the copy-on-write faults it takes before
exec and the teardown of that copy at exec are billed to the command. Measured here: an empty C program took
2.2 ms of CPU started by os.fork() and 0.65 ms by posix_spawn(); `chainmail --help` 2.2-3.0 against 1.0 ms.
"""
import os
import statistics
import sys
import time


def main():
    runs, cmd = int(sys.argv[1]), sys.argv[2:]
    devnull = os.open(os.devnull, os.O_WRONLY)
    to_devnull = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    cpu, wall = [], []
    for _ in range(runs):
        start = time.perf_counter()
        try:
            pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=to_devnull)
        except OSError as e:
            sys.exit(f"cpu_min.py: cannot start {cmd[0]}: {e.strerror}")
        _, status, usage = os.wait4(pid, 0)
        wall.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"cpu_min.py: {cmd[0]} exited with {os.waitstatus_to_exitcode(status)}")
        cpu.append(usage.ru_utime + usage.ru_stime)
    print(f"{min(cpu):.6f} {min(wall):.6f} {statistics.median(cpu):.6f}")


if __name__ == "__main__":
    main()
