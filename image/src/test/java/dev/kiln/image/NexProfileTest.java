package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Verifier;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.FileStat;
import dev.kiln.ext4.Metadata;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.apache.commons.codec.digest.Crypt;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NexProfileTest {
    @TempDir Path tmp;
    Path agent;
    static final Instant T = Instant.ofEpochSecond(1_700_000_000L);

    @BeforeEach
    void agent() throws Exception {
        agent = tmp.resolve("nex-agent");
        Files.write(agent, "\u007fELF pretend agent binary".getBytes(StandardCharsets.UTF_8));
    }

    /** An Alpine-like base: OpenRC's layout and the account files, root's password empty. */
    static Source alpineBase(boolean openrc) {
        return new Source() {
            @Override
            public void applyTo(Ext4Writer w) throws java.io.IOException {
                Metadata d = Metadata.of(0755, T);
                for (String p : List.of("/bin", "/sbin", "/etc", "/etc/init.d", "/etc/runlevels", "/etc/runlevels/boot",
                        "/etc/runlevels/default", "/home", "/root")) {
                    w.directory(p, d);
                }
                w.directory("/tmp", Metadata.of(0755, T));
                file(w, "/bin/busybox", "busybox", 0755);
                if (openrc) {
                    file(w, "/sbin/openrc-run", "openrc-run", 0755);
                    for (String s : List.of("devfs", "procfs", "sysfs", "agetty", "networking")) {
                        file(w, "/etc/init.d/" + s, "#!/sbin/openrc-run\n", 0755);
                    }
                }
                file(w, "/etc/passwd", "root:x:0:0:root:/root:/bin/ash\nbin:x:1:1:bin:/bin:/sbin/nologin\n", 0644);
                file(w, "/etc/group", "root:x:0:root\nbin:x:1:root,bin\n", 0644);
                w.file("/etc/shadow", new Metadata(0640, 0, 42, T, T, T, T, java.util.Map.of()), 28,
                        new ByteArrayInputStream("root:::0:::::\nbin:!::0:::::\n".getBytes()));
                file(w, "/etc/securetty", "console\ntty1", 0644);
            }

            private void file(Ext4Writer w, String p, String s, int mode) throws java.io.IOException {
                byte[] b = s.getBytes(StandardCharsets.UTF_8);
                w.file(p, Metadata.of(mode, T), b.length, new ByteArrayInputStream(b));
            }

            @Override
            public String describe() {
                return "alpine-like test base";
            }
        };
    }

    private Path build(Source... sources) throws Exception {
        Path img = tmp.resolve("rootfs.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(32L << 20).build())) {
            for (Source s : sources) {
                s.applyTo(w);
            }
        }
        return img;
    }

    private static String text(Ext4Reader r, String p) throws Exception {
        return new String(r.open(p).readAllBytes(), StandardCharsets.UTF_8);
    }

    @Test
    void everythingNexSetUpIsThere() throws Exception {
        NexProfile p = NexProfile.builder(agent).time(T).build();
        Path img = build(alpineBase(true), p);
        try (Ext4Reader r = Ext4Reader.open(img)) {
            FileStat a = r.stat("/usr/local/bin/agent", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            assertEquals(0755, a.mode());
            assertEquals(0, a.uid());
            assertEquals(Files.readString(agent), text(r, "/usr/local/bin/agent"));
            FileStat svc = r.stat("/etc/init.d/agent", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            assertEquals(0755, svc.mode());
            String script = text(r, "/etc/init.d/agent");
            assertTrue(script.startsWith("#!/sbin/openrc-run\n"), script);
            assertTrue(script.contains("supervisor=\"supervise-daemon\""), script);
            assertTrue(script.contains("command=\"/usr/local/bin/agent\""), script);
            assertTrue(script.contains("command_user=\"nex:nex\""), script);
            assertTrue(script.contains("output_log=\"/home/nex/nex.log\"") && script.contains("error_log=\"/home/nex/err.log\""));
            assertTrue(script.contains("after net"), script);
            assertEquals("/etc/init.d/agent", r.readLink(r.resolve("/etc/runlevels/boot/agent", false)));
            for (String s : List.of("devfs", "procfs", "sysfs")) {
                assertEquals("/etc/init.d/" + s, r.readLink(r.resolve("/etc/runlevels/boot/" + s, false)));
            }
            assertEquals("agetty", r.readLink(r.resolve("/etc/init.d/agetty.ttyS0", false)));
            assertEquals("/etc/init.d/agetty.ttyS0", r.readLink(r.resolve("/etc/runlevels/default/agetty.ttyS0", false)));
            assertEquals("console\ntty1\nttyS0\n", text(r, "/etc/securetty"));
            assertEquals("root:x:0:0:root:/root:/bin/ash\nbin:x:1:1:bin:/bin:/sbin/nologin\n"
                    + "nex:x:1000:1000:nex:/home/nex:/bin/sh\n", text(r, "/etc/passwd"));
            assertEquals("root:x:0:root\nbin:x:1:root,bin\nnex:x:1000:\n", text(r, "/etc/group"));
            assertEquals("root:!::0:::::\nbin:!::0:::::\nnex:!::0:99999:7:::\n", text(r, "/etc/shadow"));
            FileStat shadow = r.stat("/etc/shadow", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            assertEquals(0640, shadow.mode());
            assertEquals(42, shadow.gid());
            FileStat home = r.stat("/home/nex", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            assertTrue(home.isDirectory());
            assertEquals(1000, home.uid());
            assertEquals(1000, home.gid());
            for (String d : List.of("/dev", "/proc", "/run", "/sys", "/var", "/tmp")) {
                assertTrue(r.stat(d, java.nio.file.LinkOption.NOFOLLOW_LINKS).isDirectory(), d);
            }
            assertEquals(01777, r.stat("/tmp", java.nio.file.LinkOption.NOFOLLOW_LINKS).mode());
            assertEquals(List.of(), Ext4Verifier.verify(r));
        }
    }

    @Test
    void existingEntriesAreKeptNotDuplicated() throws Exception {
        NexProfile p = NexProfile.builder(agent).time(T).build();
        Path img = build(alpineBase(true), p, p);
        try (Ext4Reader r = Ext4Reader.open(img)) {
            assertEquals(1, text(r, "/etc/passwd").lines().filter(l -> l.startsWith("nex:")).count());
            assertEquals(1, text(r, "/etc/group").lines().filter(l -> l.startsWith("nex:")).count());
            assertEquals(1, text(r, "/etc/shadow").lines().filter(l -> l.startsWith("nex:")).count());
            assertEquals(1, text(r, "/etc/securetty").lines().filter(l -> l.equals("ttyS0")).count());
        }
    }

    @Test
    void rootPasswordIsHashedWithSha512Crypt() throws Exception {
        Path img = build(alpineBase(true), NexProfile.builder(agent).time(T).rootPassword("s3cret").build());
        try (Ext4Reader r = Ext4Reader.open(img)) {
            String root = text(r, "/etc/shadow").lines().filter(l -> l.startsWith("root:")).findFirst().orElseThrow();
            String hash = root.split(":")[1];
            assertTrue(hash.startsWith("$6$"), hash);
            assertEquals(hash, Crypt.crypt("s3cret", hash));
        }
        Path again = build(alpineBase(true), NexProfile.builder(agent).time(T).rootPassword("$6$abc$xyz").build());
        try (Ext4Reader r = Ext4Reader.open(again)) {
            assertTrue(text(r, "/etc/shadow").startsWith("root:$6$abc$xyz::0:::::\n"));
        }
    }

    @Test
    void theSameRootPasswordGetsAnotherSaltInAnotherImageAndTheSameInTheSameBuild() throws Exception {
        String a = rootHash(build(alpineBase(true), NexProfile.builder(agent).time(T).rootPassword("s3cret").build()));
        String again = rootHash(build(alpineBase(true), NexProfile.builder(agent).time(T).rootPassword("s3cret").build()));
        Source extra = new Source() {
            @Override
            public void applyTo(Ext4Writer w) throws java.io.IOException {
                w.file("/etc/motd", dev.kiln.ext4.Metadata.of(0644, T), 3, new java.io.ByteArrayInputStream("hi\n".getBytes()));
            }

            @Override
            public String describe() {
                return "motd";
            }
        };
        String other = rootHash(build(alpineBase(true), extra,
                NexProfile.builder(agent).time(T).rootPassword("s3cret").build()));
        assertEquals(a, again, "reproducible");
        assertTrue(!a.equals(other), "another image, another salt: " + a + " / " + other);
        assertEquals(other, Crypt.crypt("s3cret", other));
        assertTrue(!a.split("\\$")[2].equals(other.split("\\$")[2]), "the salts differ");
    }

    private String rootHash(Path img) throws Exception {
        try (Ext4Reader r = Ext4Reader.open(img)) {
            return text(r, "/etc/shadow").lines().filter(l -> l.startsWith("root:")).findFirst().orElseThrow().split(":")[1];
        }
    }

    @Test
    void withoutOpenRcTheBuildSaysWhatToDo() {
        InvalidSourceException e = assertThrows(InvalidSourceException.class,
                () -> build(alpineBase(false), NexProfile.builder(agent).time(T).build()));
        assertTrue(e.getMessage().contains("/sbin/openrc-run") && e.getMessage().contains("--agent-init pid1"),
                e.getMessage());
    }

    @Test
    void pid1MakesTheAgentInit() throws Exception {
        Path img = build(Sources.SCRATCH, NexProfile.builder(agent).init(NexProfile.Init.PID1).time(T).build());
        try (Ext4Reader r = Ext4Reader.open(img)) {
            assertEquals(r.stat("/usr/local/bin/agent", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino(), r.stat("/sbin/init", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino());
            assertTrue(text(r, "/etc/passwd").contains("nex:x:1000:1000:"));
            assertEquals(0, r.lookupPath("/etc/init.d/agent", false));
        }
    }

    @Test
    void usrMergedBaseKeepsItsSymlinks() throws Exception {
        Source usrMerged = new Source() {
            @Override
            public void applyTo(Ext4Writer w) throws java.io.IOException {
                w.directory("/usr/sbin", Metadata.of(0755, T));
                w.directory("/usr/bin", Metadata.of(0755, T));
                w.symlink("/sbin", Metadata.of(0777, T), "usr/sbin");
                w.symlink("/bin", Metadata.of(0777, T), "usr/bin");
                w.directory("/run", Metadata.of(0755, T));
                w.directory("/var", Metadata.of(0755, T));
                w.symlink("/var/run", Metadata.of(0777, T), "/run");
                byte[] init = "systemd".getBytes();
                w.file("/usr/sbin/init", Metadata.of(0755, T), init.length, new ByteArrayInputStream(init));
            }

            @Override
            public String describe() {
                return "usr-merged base";
            }
        };
        Path img = build(usrMerged, NexProfile.builder(agent).init(NexProfile.Init.PID1).time(T).build());
        try (Ext4Reader r = Ext4Reader.open(img)) {
            assertTrue(r.stat("/sbin", java.nio.file.LinkOption.NOFOLLOW_LINKS).isSymlink(), "/sbin stays a symlink");
            assertTrue(r.stat("/var/run", java.nio.file.LinkOption.NOFOLLOW_LINKS).isSymlink(), "/var/run stays a symlink");
            assertEquals(r.stat("/usr/local/bin/agent", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino(), r.stat("/usr/sbin/init", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino());
            assertEquals(List.of(), Ext4Verifier.verify(r));
        }
    }

    @Test
    void settableUserPathAndRunlevel() throws Exception {
        Path img = build(alpineBase(true), NexProfile.builder(agent).time(T).user("svc", 2000, 3000)
                .agentPath("/opt/agent").runlevel("default").build());
        try (Ext4Reader r = Ext4Reader.open(img)) {
            assertEquals("/etc/init.d/agent", r.readLink(r.resolve("/etc/runlevels/default/agent", false)));
            assertTrue(text(r, "/etc/init.d/agent").contains("command=\"/opt/agent\""));
            assertTrue(text(r, "/etc/passwd").contains("svc:x:2000:3000:svc:/home/svc:/bin/sh"));
            assertEquals(2000, r.stat("/home/svc", java.nio.file.LinkOption.NOFOLLOW_LINKS).uid());
        }
    }
}
