package dev.kiln.image;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.FileStat;
import dev.kiln.ext4.FileType;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Can this image boot and reach its agent? What only a kernel panic would reveal otherwise:
 * whether there is an init ({@code /sbin/init}, symlinks followed inside the image), whether
 * the init and the agent are executables for the target platform, whether a dynamically linked
 * one finds its loader and libraries and a script its {@code #!} interpreter, and which OpenRC
 * runlevel links point at services the image does not have.
 */
public final class BootCheck {
    /** An error: the image cannot boot to its agent. A warning: something at boot will be missing or skipped. */
    public enum Severity { ERROR, WARNING }

    /** One finding, with the image path it is about and what to do. */
    public record Problem(Severity severity, String path, String message) {
        @Override
        public String toString() {
            return (severity == Severity.ERROR ? "error: " : "warning: ") + path + ": " + message;
        }
    }

    /** The path the kernel starts by default. */
    public static final String INIT = "/sbin/init";

    private final String arch;
    private final String agent;
    private final boolean agentIsInit;

    /**
     * @param arch the target platform's architecture, as OCI names it ({@code amd64}, {@code arm64}, …)
     * @param agent the agent's path in the image, or null when there is none to check
     * @param agentIsInit whether the agent is PID 1 ({@code --agent-init pid1})
     */
    public BootCheck(String arch, String agent, boolean agentIsInit) {
        this.arch = Objects.requireNonNull(arch);
        this.agent = agent;
        this.agentIsInit = agentIsInit;
    }

    /** All findings, errors first. */
    public List<Problem> check(Ext4Reader r) throws IOException {
        List<Problem> out = new ArrayList<>();
        Loader.Tree tree = Loader.of(r);
        if (tree.read(INIT, 0) == null) {
            out.add(new Problem(Severity.ERROR, INIT, noInit(r, tree)));
        } else {
            program(tree, INIT, "init", out);
        }
        if (agent != null && !agentIsInit) {
            if (tree.read(agent, 0) == null) {
                out.add(new Problem(Severity.ERROR, agent, "the agent is not in the image"));
            } else {
                program(tree, agent, "the agent", out);
            }
        }
        runlevels(r, out);
        out.sort((a, b) -> a.severity().compareTo(b.severity()));
        return out;
    }

    private String noInit(Ext4Reader r, Loader.Tree tree) throws IOException {
        String what = "the image has no init, so the kernel panics at boot (\"No working init found\"); ";
        for (String candidate : List.of("/sbin/openrc-init", "/lib/systemd/systemd", "/usr/lib/systemd/systemd",
                "/bin/busybox", "/sbin/runit-init", "/usr/bin/tini")) {
            if (tree.executable(candidate)) {
                return what + "the image has " + candidate + ": add --init " + candidate + " to link " + INIT + " to it";
            }
        }
        return what + "install one in --script (apk add openrc, apt-get install openrc) and add --init /sbin/openrc-init, "
                + "or make the agent PID 1 with --agent-init pid1";
    }

    /** An executable that must start at boot: mode, format, platform, and what it needs. */
    private void program(Loader.Tree tree, String path, String role, List<Problem> out) throws IOException {
        if (!tree.executable(path)) {
            out.add(new Problem(Severity.ERROR, path, role + " is not executable (no x bit); chmod it in the source or "
                    + "add it with --add SRC:" + path + ":0755"));
            return;
        }
        byte[] head = tree.read(path, 4096);
        if (Loader.shebang(head) == null) {
            if (!Elf.isElf(head)) {
                out.add(new Problem(Severity.ERROR, path, role + " is neither an ELF executable nor a #! script"));
                return;
            }
            Elf elf = Elf.parse(tree.read(path, Loader.MAX_READ));
            Integer want = Elf.MACHINES.get(arch);
            if (want != null && elf.machine() != want) {
                out.add(new Problem(Severity.ERROR, path, role + " is built for " + Elf.machineName(elf.machine())
                        + " but the image is for " + arch + " (--platform); use a " + arch + " build"));
                return;
            }
        }
        for (Loader.Need n : new Loader(tree, arch).needs(path)) {
            if (n.found() != null) {
                continue;
            }
            String by = n.neededBy().equals(path) ? role + " (" + path + ")" : n.neededBy() + " (needed by " + path + ")";
            String fix = "; install it in the image, link " + role + " statically, or add --host-libs to copy it from "
                    + "this machine";
            switch (n.kind()) {
                case "interpreter" -> out.add(new Problem(Severity.ERROR, path, by + " is a script for " + n.name()
                        + ", which is not in the image" + fix));
                case "loader" -> out.add(new Problem(Severity.ERROR, path, by + " is dynamically linked, but its loader "
                        + n.name() + " is not in the image" + fix));
                case "command" -> out.add(new Problem(Severity.ERROR, path, by + " runs " + n.name() + " through env, "
                        + "but no " + n.name() + " is in " + String.join(":", n.searched())));
                default -> out.add(new Problem(Severity.ERROR, path, by + " needs " + n.name()
                        + ", which is in none of the library directories (" + shortList(n.searched()) + ")" + fix));
            }
        }
    }

    private static String shortList(List<String> dirs) {
        return dirs.size() <= 6 ? String.join(", ", dirs) : String.join(", ", dirs.subList(0, 6)) + ", …";
    }

    /** OpenRC runlevel links whose service does not exist: OpenRC skips them with an error at boot. */
    private static void runlevels(Ext4Reader r, List<Problem> out) throws IOException {
        long levels = r.lookupPath("/etc/runlevels", true);
        if (levels == 0 || r.stat(levels).type() != FileType.DIRECTORY) {
            return;
        }
        for (Ext4Reader.DirEntry level : r.list(levels)) {
            if (level.name().startsWith(".") || level.type() != FileType.DIRECTORY) {
                continue;
            }
            for (Ext4Reader.DirEntry svc : r.list(level.ino())) {
                if (svc.name().startsWith(".")) {
                    continue;
                }
                String link = "/etc/runlevels/" + level.name() + "/" + svc.name();
                FileStat st = r.stat(svc.ino());
                if (st.type() != FileType.SYMLINK) {
                    continue;
                }
                if (r.lookupPath(link, true) == 0) {
                    out.add(new Problem(Severity.WARNING, link, "points to " + r.readLink(svc.ino())
                            + ", which the image does not have; OpenRC will fail to start '" + svc.name()
                            + "' in runlevel " + level.name() + " (install the service or remove the link)"));
                }
            }
        }
    }

    /** Whether any problem is an error. */
    public static boolean failed(List<Problem> problems) {
        return problems.stream().anyMatch(p -> p.severity() == Severity.ERROR);
    }
}
