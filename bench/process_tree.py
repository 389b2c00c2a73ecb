"""A process and everything below it, read from /proc (Linux): who they
are, how much memory and CPU time each holds. Used by `grade_memory.py` and
`grade_throughput.py`, whose processes run in bubblewrap's PID namespaces
and as another account (read here as root, or as the same user)."""

import os
import threading
import time

TICKS = os.sysconf("SC_CLK_TCK")
ROLES = (  # (what the command line holds, role), first match wins
    ("grading.judge", "judge"),
    ("answers.py", "answers"),
    # The fork server and the answers' processes it forks (same command line).
    ("forkserver.py", "fork server + forked answers"),
    ("runner.py", "notebook runner"),
    ("ipykernel", "kernel"),
    ("setpriv", "setpriv"),
)


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            stat = handle.read()
    except OSError:  # ended while listing
        return None
    return stat.rsplit(")", 1)[1].split()  # fields from the state on


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def role(pid: int) -> str:
    """What a process of the grader is, from its command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    if command.startswith(("bwrap", "/usr/bin/bwrap")):
        return "bwrap"
    for marker, name in ROLES:
        if marker in command:
            return name
    return "other"


def memory(pid: int) -> dict[str, int] | None:
    """Resident, unique (private) and peak resident bytes of a process: its
    smaps_rollup and the `VmHWM` of its status (the kernel's high-water mark
    of its resident set, so a peak between two samples is not missed)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if value.strip().endswith("kB"):
                    fields[key] = int(value.split()[0]) * 1024
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    fields["VmHWM"] = int(line.split()[1]) * 1024
    except OSError:  # ended, or not ours to read
        return None
    unique = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    rss = fields.get("Rss", 0)
    return {"rss": rss, "unique": unique, "hwm": max(rss, fields.get("VmHWM", 0))}


def cpu_seconds(pid: int) -> tuple[str, float] | None:
    """(start time, user + system CPU seconds) of a process."""
    fields = _stat(pid)
    if fields is None:
        return None
    # After the state: ppid is [1], utime [11], stime [12], starttime [19].
    return fields[19], (int(fields[11]) + int(fields[12])) / TICKS


class CpuSampler(threading.Thread):
    """CPU seconds of every process below `root` (not `root` itself), by
    role, sampled every `interval` seconds until `stop()`. A process's last
    `interval` before it ends is missed: a slight undercount."""

    def __init__(self, root: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.seen: dict[tuple[int, str], tuple[str, float]] = {}
        self.running = True

    def sample(self) -> None:
        for pid in descendants(self.root)[1:]:
            got = cpu_seconds(pid)
            if got is None:
                continue
            # The role is read again each time: a child sampled between its
            # fork and its exec still shows its parent's command line (and
            # an ended process, not reaped yet, shows none: "other").
            key, name = (pid, got[0]), role(pid)
            if name == "other" and key in self.seen:
                name = self.seen[key][0]
            self.seen[key] = (name, got[1])

    def run(self) -> None:
        while self.running:
            self.sample()
            time.sleep(self.interval)

    def stop(self) -> dict[str, tuple[int, float]]:
        """{role: (processes, CPU seconds)}."""
        self.running = False
        self.join()
        self.sample()
        by_role: dict[str, tuple[int, float]] = {}
        for name, seconds in self.seen.values():
            count, total = by_role.get(name, (0, 0.0))
            by_role[name] = (count + 1, total + seconds)
        return by_role
