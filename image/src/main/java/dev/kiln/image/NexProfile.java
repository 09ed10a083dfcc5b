package dev.kiln.image;

import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.Metadata;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.commons.codec.digest.Sha2Crypt;

/**
 * What {@code nex rootfs} set up on Alpine, applied on top of the base image: the agent binary,
 * an OpenRC service that supervises it as user {@code nex}, devfs/procfs/sysfs in the boot
 * runlevel, a serial console on ttyS0, the {@code nex} user and group, and the directories a
 * microVM needs. Nex's own image set root's password to "root"; kiln leaves root locked unless
 * a password is given.
 */
public final class NexProfile implements Source {
    /** What the agent service prints on the console once OpenRC has started it (kiln build --boot-test waits for it). */
    public static final String READY = "kiln: agent started";

    /** How the agent starts. */
    public enum Init { OPENRC, PID1 }

    private static final int EDIT_LIMIT = 4 << 20;

    private final Path agent;
    private final Init init;
    private final String agentPath;
    private final String user;
    private final long uid;
    private final long gid;
    private final String runlevel;
    private final String rootPassword;
    private final Instant time;

    private NexProfile(Builder b) {
        this.agent = Objects.requireNonNull(b.agent, "agent");
        this.init = b.init;
        this.agentPath = b.agentPath;
        this.user = b.user;
        this.uid = b.uid;
        this.gid = b.gid;
        this.runlevel = b.runlevel;
        this.rootPassword = b.rootPassword;
        this.time = b.time;
    }

    public static Builder builder(Path agent) {
        return new Builder(agent);
    }

    public static final class Builder {
        private final Path agent;
        private Init init = Init.OPENRC;
        private String agentPath = "/usr/local/bin/agent";
        private String user = "nex";
        private long uid = 1000;
        private long gid = 1000;
        private String runlevel = "boot";
        private String rootPassword;
        private Instant time = Instant.EPOCH;

        private Builder(Path agent) {
            this.agent = agent;
        }

        public Builder init(Init v) {
            this.init = v;
            return this;
        }

        public Builder agentPath(String v) {
            this.agentPath = v;
            return this;
        }

        public Builder user(String name, long uid, long gid) {
            if (!name.matches("[a-z_][a-z0-9_-]{0,31}")) {
                throw new IllegalArgumentException("not a valid user name: " + name);
            }
            this.user = name;
            this.uid = uid;
            this.gid = gid;
            return this;
        }

        public Builder runlevel(String v) {
            if (!v.matches("[a-z0-9_-]+")) {
                throw new IllegalArgumentException("not a valid runlevel name: " + v);
            }
            this.runlevel = v;
            return this;
        }

        /** A plain password (hashed with SHA-512 crypt) or a ready crypt hash starting with '$'. */
        public Builder rootPassword(String v) {
            this.rootPassword = v;
            return this;
        }

        /** Time for what the profile creates. */
        public Builder time(Instant v) {
            this.time = v;
            return this;
        }

        public NexProfile build() {
            return new NexProfile(this);
        }
    }

    @Override
    public long[] estimate() throws IOException {
        return new long[] {Files.size(agent) + 64 * 1024, 40};
    }

    @Override
    public String describe() {
        return "nex profile (agent " + agent + ")";
    }

    private String home() {
        return "/home/" + user;
    }

    /** The OpenRC service: the agent supervised, as the service user, logging into its home. */
    String serviceScript() {
        return "#!/sbin/openrc-run\n"
                + "# Written by kiln: the Nex agent, supervised.\n"
                + "name=\"agent\"\n"
                + "description=\"Nex agent\"\n"
                + "supervisor=\"supervise-daemon\"\n"
                + "command=\"" + agentPath + "\"\n"
                + "command_user=\"" + user + ":" + user + "\"\n"
                + "directory=\"" + home() + "\"\n"
                + "output_log=\"" + home() + "/nex.log\"\n"
                + "error_log=\"" + home() + "/err.log\"\n"
                + "\n"
                + "depend() {\n"
                + "\tafter net\n"
                + "}\n"
                + "\n"
                + "start_post() {\n"
                + "\t# A readiness line on the console (kiln boot, kiln build --boot-test).\n"
                + "\teinfo \"" + READY + "\"\n"
                + "}\n";
    }

    @Override
    public void applyTo(Ext4Writer w) throws IOException {
        if (!Files.isRegularFile(agent)) {
            throw new InvalidSourceException(agent + (java.nio.file.Files.isDirectory(agent)
                    ? ": is a directory; give --agent the agent binary itself"
                    : ": agent binary not found; give the path of the Nex agent with --agent"));
        }
        if (init == Init.OPENRC && !w.isFile("/sbin/openrc-run") && !w.exists("/sbin/openrc-run")) {
            throw new InvalidSourceException("/sbin/openrc-run: the base image has no OpenRC, so the agent service "
                    + "cannot be installed; choose a base with OpenRC (Alpine with openrc) or use --agent-init pid1");
        }
        Metadata root755 = Metadata.of(0755, time);
        for (String d : List.of("/dev", "/proc", "/run", "/sys", "/var")) {
            ensureDir(w, d, root755);
        }
        Metadata tmp = w.metadata("/tmp");
        if (tmp == null || w.isDirectory("/tmp")) {
            w.directory("/tmp", tmp != null ? tmp.withMode(01777) : Metadata.of(01777, time));
        }

        w.file(agentPath, Metadata.of(0755, time), agent);

        addUser(w);
        Metadata home = w.metadata(home());
        w.directory(home(), (home != null && w.isDirectory(home()) ? home : Metadata.of(0755, time)).withOwner(uid, gid));
        rootAccount(w);

        if (init == Init.PID1) {
            if (w.exists("/sbin/init")) {
                w.remove("/sbin/init");
            }
            w.hardLink("/sbin/init", agentPath);
            return;
        }
        write(w, "/etc/init.d/agent", serviceScript(), Metadata.of(0755, time));
        ensureDir(w, "/etc/runlevels", root755);
        for (String lvl : List.of("boot", "default", runlevel)) {
            ensureDir(w, "/etc/runlevels/" + lvl, root755);
        }
        Metadata link = Metadata.of(0777, time);
        w.symlink("/etc/runlevels/" + runlevel + "/agent", link, "/etc/init.d/agent");
        for (String svc : List.of("devfs", "procfs", "sysfs")) {
            w.symlink("/etc/runlevels/boot/" + svc, link, "/etc/init.d/" + svc);
        }
        w.symlink("/etc/init.d/agetty.ttyS0", link, "agetty");
        w.symlink("/etc/runlevels/default/agetty.ttyS0", link, "/etc/init.d/agetty.ttyS0");
        appendLineIfMissing(w, "/etc/securetty", "ttyS0", Metadata.of(0600, time));
    }

    /** Creates a directory unless something is there already (a symlink such as /var/run -> /run stays). */
    private void ensureDir(Ext4Writer w, String path, Metadata md) {
        if (!w.exists(path)) {
            w.directory(path, md);
        }
    }

    private String readText(Ext4Writer w, String path) throws IOException {
        return w.isFile(path) ? new String(w.read(path, EDIT_LIMIT), StandardCharsets.UTF_8) : null;
    }

    private void write(Ext4Writer w, String path, String content, Metadata md) throws IOException {
        byte[] b = content.getBytes(StandardCharsets.UTF_8);
        w.file(path, md, b.length, new ByteArrayInputStream(b));
    }

    private void appendLineIfMissing(Ext4Writer w, String path, String line, Metadata fresh) throws IOException {
        String text = readText(w, path);
        if (text != null && text.lines().anyMatch(l -> l.trim().equals(line))) {
            return;
        }
        Metadata md = text != null ? w.metadata(path) : fresh;
        String base = text == null ? "" : text.isEmpty() || text.endsWith("\n") ? text : text + "\n";
        write(w, path, base + line + "\n", md);
    }

    /** Adds the group and user (passwd, shadow) unless an entry of that name is already there. */
    private void addUser(Ext4Writer w) throws IOException {
        addEntry(w, "/etc/group", user + ":x:" + gid + ":", Metadata.of(0644, time));
        addEntry(w, "/etc/passwd", user + ":x:" + uid + ":" + gid + ":" + user + ":" + home() + ":/bin/sh",
                Metadata.of(0644, time));
        // '!' : no password, and no way to log in with one (adduser -D does the same).
        addEntry(w, "/etc/shadow", user + ":!::0:99999:7:::", Metadata.of(0600, time));
    }

    private void addEntry(Ext4Writer w, String file, String line, Metadata fresh) throws IOException {
        String name = line.substring(0, line.indexOf(':') + 1);
        String text = readText(w, file);
        if (text != null && text.lines().anyMatch(l -> l.startsWith(name))) {
            return;
        }
        appendLineIfMissing(w, file, line, fresh);
    }

    /** Locks root (an empty password field becomes '!'), or sets the password given. */
    private void rootAccount(Ext4Writer w) throws IOException {
        String text = readText(w, "/etc/shadow");
        List<String> lines = new ArrayList<>(text == null ? List.of() : text.lines().toList());
        String hash = rootPassword == null ? null : rootPassword.startsWith("$") ? rootPassword
                : crypt(rootPassword, w.contentDigest());
        boolean found = false;
        boolean changed = false;
        for (int i = 0; i < lines.size(); i++) {
            String[] f = lines.get(i).split(":", -1);
            if (f.length >= 2 && f[0].equals("root")) {
                found = true;
                String want = hash != null ? hash : f[1].isEmpty() ? "!" : f[1];
                if (!want.equals(f[1])) {
                    f[1] = want;
                    lines.set(i, String.join(":", f));
                    changed = true;
                }
            }
        }
        if (!found) {
            lines.add(0, "root:" + (hash != null ? hash : "!") + "::0:::::");
            changed = true;
        }
        if (changed) {
            Metadata md = text != null ? w.metadata("/etc/shadow") : Metadata.of(0600, time);
            write(w, "/etc/shadow", String.join("\n", lines) + "\n", md);
        }
    }

    /**
     * SHA-512 crypt with a salt derived from the image's content so far and the password: the
     * same build gives the same hash (reproducible), another image another salt, so equal
     * passwords do not show as equal hashes across images. Give a ready hash (starting with
     * '$') to choose the salt.
     */
    static String crypt(String password, byte[] image) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update("kiln-salt:".getBytes(StandardCharsets.UTF_8));
            md.update(image);
            byte[] d = md.digest(password.getBytes(StandardCharsets.UTF_8));
            String salt = Base64.getEncoder().encodeToString(d).replaceAll("[^A-Za-z0-9./]", ".").substring(0, 16);
            return Sha2Crypt.sha512Crypt(password.getBytes(StandardCharsets.UTF_8), "$6$" + salt);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** For tests and --json: what the profile promises. */
    public Map<String, String> summary() {
        return Map.of("agent", agentPath, "init", init.name().toLowerCase(java.util.Locale.ROOT), "user", user);
    }
}
