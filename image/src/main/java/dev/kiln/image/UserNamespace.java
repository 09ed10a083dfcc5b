package dev.kiln.image;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * How a build step runs a command in a namespace of its own: as root, a private mount and PID
 * namespace ({@code unshare --mount --pid}); otherwise also a user namespace. A user with a
 * subordinate id range ({@code /etc/subuid}, {@code /etc/subgid}) gets ids 0–65535 mapped as
 * podman and buildah map them: 0 is the invoking user, 1 and up are the subordinate ids, set by
 * {@code newuidmap}/{@code newgidmap} (Debian's {@code uidmap}) once the namespace exists.
 * Without a range only id 0 is mapped ({@code unshare --map-root-user}).
 */
public final class UserNamespace {
    /** Ids a package manager needs: root, the system groups, {@code _apt}, {@code nobody} (65534). */
    static final long WANTED = 65536;

    /** A subordinate range: inside ids 1..count are host ids start..start+count-1. */
    record Range(long start, long count) {}

    enum Kind { ROOT, MAPPED, SINGLE }

    private final Kind kind;
    private final long uid;
    private final long gid;
    private final Range uids;
    private final Range gids;
    private final String note;

    private UserNamespace(Kind kind, long uid, long gid, Range uids, Range gids, String note) {
        this.kind = kind;
        this.uid = uid;
        this.gid = gid;
        this.uids = uids;
        this.gids = gids;
        this.note = note;
    }

    /** The namespace this process would get, reading /etc/subuid and /etc/subgid. */
    public static UserNamespace detect() throws IOException {
        long uid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
        long gid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:gid")).longValue();
        if (uid == 0) {
            return new UserNamespace(Kind.ROOT, 0, 0, null, null, null);
        }
        String user = System.getProperty("user.name");
        Range u = range(Path.of("/etc/subuid"), user, uid);
        Range g = range(Path.of("/etc/subgid"), user, uid);
        String fix = "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " + user;
        if (u == null || g == null) {
            return new UserNamespace(Kind.SINGLE, uid, gid, null, null, user + " has no subordinate id range in "
                    + (u == null ? "/etc/subuid" : "/etc/subgid") + ", so the script runs with only root mapped (package "
                    + "managers need ids 0-65535); to add one: " + fix);
        }
        for (String tool : List.of("newuidmap", "newgidmap")) {
            if (which(tool) == null) {
                return new UserNamespace(Kind.SINGLE, uid, gid, null, null, tool + " is not installed, so the script runs "
                        + "with only root mapped (package managers need ids 0-65535); install it: apt-get install uidmap");
            }
        }
        return new UserNamespace(Kind.MAPPED, uid, gid, u, g, null);
    }

    Kind kind() {
        return kind;
    }

    /** A one-line warning when the namespace is not what package managers need, else null. */
    public String note() {
        return note;
    }

    /** The highest id that exists inside (65535 or fewer for a short range; 0 with the single mapping). */
    long maxUid() {
        return kind == Kind.ROOT ? 0xFFFFFFFFL : kind == Kind.SINGLE ? 0 : Math.min(uids.count(), WANTED - 1);
    }

    /**
     * The {@code unshare} command line that runs {@code command} inside; for {@link Kind#MAPPED}
     * the command first waits for a line on its standard input, sent by {@link #start} once the
     * id maps are written.
     */
    List<String> wrap(List<String> command) {
        List<String> cmd = new ArrayList<>(List.of("unshare"));
        switch (kind) {
            case ROOT -> { }
            case SINGLE -> cmd.add("--map-root-user");
            case MAPPED -> cmd.add("--user");
        }
        cmd.addAll(List.of("--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "--"));
        if (kind == Kind.MAPPED) {
            cmd.addAll(List.of("/bin/sh", "-c", "read -r _ && exec \"$@\"", "kiln-stage"));
        }
        cmd.addAll(command);
        return cmd;
    }

    /** Starts {@code pb} (made from {@link #wrap}) and, for a mapped namespace, maps its ids and lets it go on. */
    Process start(ProcessBuilder pb) throws IOException {
        Process p = pb.start();
        if (kind != Kind.MAPPED) {
            p.getOutputStream().close();
            return p;
        }
        try {
            awaitNamespace(p);
            map("newuidmap", p.pid(), uid, uids);
            map("newgidmap", p.pid(), gid, gids);
            p.getOutputStream().write('\n');
            p.getOutputStream().close();
        } catch (IOException | RuntimeException e) {
            p.destroyForcibly();
            throw e;
        }
        return p;
    }

    /**
     * Waits until {@code unshare} has made its user namespace: the process exists as soon as it
     * is started, but maps written before its unshare() call would be for this namespace, and
     * newuidmap refuses them.
     */
    private static void awaitNamespace(Process p) throws IOException {
        Path self = Path.of("/proc/self/ns/user");
        Path child = Path.of("/proc/" + p.pid() + "/ns/user");
        String mine = Files.readSymbolicLink(self).toString();
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (System.nanoTime() < deadline && p.isAlive()) {
            try {
                if (!Files.readSymbolicLink(child).toString().equals(mine)) {
                    return;
                }
                Thread.sleep(1);
            } catch (IOException e) {
                // not readable yet
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while starting a user namespace");
            }
        }
        throw new IOException("unshare did not make a user namespace (" + (p.isAlive() ? "no answer after 10 s"
                : "it exited with status " + p.exitValue()) + "); are unprivileged user namespaces allowed here?");
    }

    private static void map(String tool, long pid, long self, Range r) throws IOException {
        List<String> cmd = List.of(tool, Long.toString(pid), "0", Long.toString(self), "1", "1", Long.toString(r.start()),
                Long.toString(Math.min(r.count(), WANTED - 1)));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = Subprocess.drainAndWait(p, 30, "kiln: " + tool).trim();
        if (p.exitValue() != 0) {
            throw new InvalidSourceException(String.join(" ", cmd) + " failed: " + out
                    + "; check /etc/subuid and /etc/subgid and that " + tool + " is setuid root (apt-get install uidmap)");
        }
    }

    /** The first range of {@code user} (by name or number) in a subordinate id file, or null. */
    static Range range(Path file, String user, long uid) throws IOException {
        if (!Files.isReadable(file)) {
            return null;
        }
        for (String line : Files.readAllLines(file)) {
            String[] f = line.trim().split(":");
            if (f.length != 3 || !(f[0].equals(user) || f[0].equals(Long.toString(uid)))) {
                continue;
            }
            try {
                long start = Long.parseLong(f[1]);
                long count = Long.parseLong(f[2]);
                if (count > 0) {
                    return new Range(start, count);
                }
            } catch (NumberFormatException e) {
                // not a range line
            }
        }
        return null;
    }

    /** The executable {@code tool} on PATH (or in the usual system directories), or null. */
    public static Path which(String tool) {
        String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
        for (String dir : (path + ":/usr/sbin:/sbin:/usr/bin:/bin").split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, tool))) {
                return Path.of(dir, tool);
            }
        }
        return null;
    }

}
