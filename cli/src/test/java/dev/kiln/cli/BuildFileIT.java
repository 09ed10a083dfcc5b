package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.ExternalTools;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kiln build -f kiln.yaml: the same image as the equivalent flags, byte for byte; the effective
 * configuration round-trips; malformed files name the line; the lock file pins the base image's
 * digest and the inputs, and --locked refuses a moved tag (against a real registry) and a
 * changed input.
 */
class BuildFileIT {
    @TempDir Path tmp;

    private Path project() throws IOException {
        Path p = Files.createDirectories(tmp.resolve("project"));
        Path files = Files.createDirectories(p.resolve("files/etc"));
        Files.writeString(files.resolve("motd"), "welcome to nex\n");
        Files.writeString(p.resolve("agent"), "#!/bin/sh\nexec sleep 1000\n");
        Files.writeString(p.resolve("setup.sh"), "echo configured > /etc/configured\n");
        Path base = Files.createDirectories(p.resolve("base/bin"));
        Files.writeString(base.resolve("sh"), "not a shell\n");
        return p;
    }

    @Test
    void yamlAndTheEquivalentFlagsGiveIdenticalBytes() throws Exception {
        Path p = project();
        Files.writeString(p.resolve("kiln.yaml"), """
                # the Nex image, declaratively
                image: dir:base
                size: 48M
                label: nex
                uuid: 6c7a1a34-2a3b-4bc0-9e57-0f6c1d9b2e11
                source-date-epoch: 1700000000
                agent: agent
                agent-init: pid1
                no-boot-check: true
                add:
                  - from: files/etc/motd
                    to: /etc/motd
                    mode: "0644"
                    owner: "0:0"
                  - files:/srv/files
                output: out/from-yaml.ext4
                """);
        Files.createDirectories(p.resolve("out"));
        var a = CliRunner.run("build", "-f", p.resolve("kiln.yaml").toString(), "-q");
        assertEquals(0, a.exit(), a.err());
        Path fromYaml = p.resolve("out/from-yaml.ext4");
        Path fromFlags = tmp.resolve("from-flags.ext4");
        var b = CliRunner.run("build", "--image", "dir:" + p.resolve("base"), "--size", "48M", "--label", "nex",
                "--uuid", "6c7a1a34-2a3b-4bc0-9e57-0f6c1d9b2e11", "--source-date-epoch", "1700000000",
                "--agent", p.resolve("agent").toString(), "--agent-init", "pid1", "--no-boot-check",
                "--add", p.resolve("files/etc/motd") + ":/etc/motd:0644:0:0", "--add", p.resolve("files") + ":/srv/files",
                "-o", fromFlags.toString(), "-q");
        assertEquals(0, b.exit(), b.err());
        ExternalTools.assertFsckClean(fromYaml);
        assertArrayEquals(Files.readAllBytes(fromFlags), Files.readAllBytes(fromYaml),
                "kiln.yaml and the same options as flags build the same bytes");
        try (Ext4Reader r = Ext4Reader.open(fromYaml)) {
            assertEquals("welcome to nex\n", new String(r.readAllBytes("/srv/files/etc/motd"), StandardCharsets.UTF_8));
            assertTrue(r.exists("/usr/local/bin/agent"));
        }
        // A flag overrides the file's value.
        Path small = tmp.resolve("small.ext4");
        var c = CliRunner.run("build", "-f", p.resolve("kiln.yaml").toString(), "--size", "40M", "-o", small.toString(), "-q");
        assertEquals(0, c.exit(), c.err());
        assertEquals(40L << 20, Files.size(small));
    }

    @Test
    void printConfigShowsTheEffectiveConfigurationAndRoundTrips() throws Exception {
        Path p = project();
        Files.writeString(p.resolve("kiln.yaml"), "image: dir:base\nsize: 48M\nscript: [setup.sh]\nenv: [A=1]\n");
        var first = CliRunner.run("build", "-f", p.resolve("kiln.yaml").toString(), "--label", "flagged", "--env", "B=2",
                "--print-config");
        assertEquals(0, first.exit(), first.err());
        assertTrue(first.out().contains("label: flagged"), first.out());
        assertTrue(first.out().contains("size: 48M"), first.out());
        assertTrue(first.out().contains("- A=1") && first.out().contains("- B=2"), "lists add up: " + first.out());
        assertTrue(first.out().contains(p.resolve("setup.sh").toString()), "paths resolved against the file: " + first.out());
        Files.writeString(tmp.resolve("effective.yaml"), first.out());
        var second = CliRunner.run("build", "-f", tmp.resolve("effective.yaml").toString(), "--print-config");
        assertEquals(0, second.exit(), second.err());
        assertEquals(first.out(), second.out(), "the printed configuration, read back, is the same configuration");
        assertFalse(Files.exists(Path.of("rootfs.ext4.tmp")));
    }

    @Test
    void malformedFilesAreUsageErrorsNamingTheLine() throws Exception {
        Path p = project();
        String[][] cases = {
            {"image: dir:base\nsise: 48M\n", ":2: unknown key 'sise' (did you mean 'size'?)"},
            {"image: dir:base\nsize: [1M, 2M]\n", ":2: 'size' takes one value, not a list"},
            {"image: dir:base\n\nverify: yes please\n", ":3: 'verify' is a flag: true or false"},
            {"image: dir:base\nlabel: {a: b}\n", ":2: 'label' takes a value, not a mapping"},
            {"- just\n- a list\n", ":1: a build file is a mapping of option names to values"},
            {"image: dir:base\nsize: 1\n  x: : [\n", ":3: not valid YAML"},
            {"add:\n  - from: files\n    too: /x\n", ":3: unknown key 'too' in an add entry"},
        };
        for (String[] c : cases) {
            Path f = Files.writeString(p.resolve("bad.yaml"), c[0]);
            var r = CliRunner.run("build", "-f", f.toString(), "-o", tmp.resolve("never.ext4").toString());
            assertEquals(2, r.exit(), c[0] + " -> " + r.err());
            assertTrue(r.err().startsWith("error: " + f + c[1]), "expected '" + f + c[1] + "' in: " + r.err());
            assertEquals(1, r.err().lines().count(), "one line: " + r.err());
            assertFalse(Files.exists(tmp.resolve("never.ext4")));
        }
        var missing = CliRunner.run("build", "-f", p.resolve("nope.yaml").toString());
        assertEquals(2, missing.exit());
        assertTrue(missing.err().contains("nope.yaml: no such build file"), missing.err());
    }

    @Test
    void lockedRefusesAChangedInput() throws Exception {
        Path p = project();
        Files.writeString(p.resolve("kiln.yaml"), "image: dir:base\nsize: 32M\nagent: agent\nagent-init: pid1\n"
                + "no-boot-check: true\noutput: a.ext4\n");
        var first = CliRunner.run("build", "-f", p.resolve("kiln.yaml").toString(), "-q");
        assertEquals(0, first.exit(), first.err());
        String lock = Files.readString(p.resolve("kiln.lock"));
        assertTrue(lock.contains("\"agent:agent\""), "paths relative to the lock's directory: " + lock);
        var again = CliRunner.run("build", "-f", p.resolve("kiln.yaml").toString(), "--locked", "-o",
                p.resolve("b.ext4").toString(), "-q");
        assertEquals(0, again.exit(), again.err());
        assertArrayEquals(Files.readAllBytes(p.resolve("a.ext4")), Files.readAllBytes(p.resolve("b.ext4")));
        Files.writeString(p.resolve("agent"), "#!/bin/sh\nexec sleep 2000\n");
        var changed = CliRunner.run("build", "-f", p.resolve("kiln.yaml").toString(), "--locked", "-o",
                p.resolve("c.ext4").toString(), "-q");
        assertEquals(3, changed.exit(), changed.err());
        assertTrue(changed.err().contains("input agent:agent changed"), changed.err());
        assertFalse(Files.exists(p.resolve("c.ext4")));
        assertEquals(lock, Files.readString(p.resolve("kiln.lock")), "--locked never rewrites the lock");
    }

    @Test
    void anUnprivilegedUserBuildsFromAFileWithItsLockAndCache() throws Exception {
        Unprivileged user = Unprivileged.withoutRange();
        Path home = Unprivileged.workDir();
        Files.createDirectories(home.resolve("base/etc"));
        Files.writeString(home.resolve("base/etc/hostname"), "nex\n");
        Files.writeString(home.resolve("agent"), "#!/bin/sh\nexec sleep 1000\n");
        Files.writeString(home.resolve("kiln.yaml"), "image: dir:base\nsize: 32M\nagent: agent\nagent-init: pid1\n"
                + "no-boot-check: true\noutput: out.ext4\n");
        var chown = dev.kiln.ext4.ExternalTools.run(List.of("chown", "-R", user.uid() + ":" + user.gid(), home.toString()));
        assertEquals(0, chown.exit(), chown.out());
        var build = user.run(home, "build", "-f", home.resolve("kiln.yaml").toString(), "-q");
        assertEquals(0, build.exit(), build.out());
        assertTrue(Files.readString(home.resolve("kiln.lock")).contains("\"agent:agent\""));
        ExternalTools.assertFsckClean(home.resolve("out.ext4"));
        var locked = user.run(home, "build", "-f", home.resolve("kiln.yaml").toString(), "--locked", "-o",
                home.resolve("again.ext4").toString(), "-q");
        assertEquals(0, locked.exit(), locked.out());
        assertArrayEquals(Files.readAllBytes(home.resolve("out.ext4")), Files.readAllBytes(home.resolve("again.ext4")));
        var cache = user.run(home, "cache", "ls", "--json", "--cache", home.resolve("cache").toString());
        assertEquals(0, cache.exit(), cache.out());
        assertTrue(cache.out().contains("\"blobs\":[]"), cache.out());
    }

    @Test
    void lockedRefusesATagThatMoved() throws Exception {
        try (TestRegistry reg = new TestRegistry(tmp.resolve("registry"))) {
            String host = reg.host;
            Path p = project();
            String cache = tmp.resolve("cache").toString();
            // Two different bases, published under one tag in turn.
            for (String v : List.of("1", "2")) {
                Path base = tmp.resolve("base" + v + ".ext4");
                Files.writeString(p.resolve("base/etc-version"), v + "\n");
                var b = CliRunner.run("build", "--image", "dir:" + p.resolve("base"), "-o", base.toString(), "--size",
                        "16M", "-q");
                assertEquals(0, b.exit(), b.err());
                var push = CliRunner.run("push", base.toString(), host + "/nex/base:stable", "--cache", cache, "-q");
                assertEquals(0, push.exit(), push.err());
                if (v.equals("1")) {
                    Files.writeString(p.resolve("kiln.yaml"), "image: " + host + "/nex/base:stable\nsize: 32M\n"
                            + "cache: " + cache + "\noutput: out.ext4\n");
                    var build = CliRunner.run("build", "-f", p.resolve("kiln.yaml").toString(), "-q");
                    assertEquals(0, build.exit(), build.err());
                    assertTrue(Files.readString(p.resolve("kiln.lock")).contains("\"digest\" : \"sha256:"),
                            Files.readString(p.resolve("kiln.lock")));
                    var same = CliRunner.run("build", "-f", p.resolve("kiln.yaml").toString(), "--locked", "-q");
                    assertEquals(0, same.exit(), same.err());
                }
            }
            var moved = CliRunner.run("build", "-f", p.resolve("kiln.yaml").toString(), "--locked", "-o",
                    p.resolve("moved.ext4").toString(), "-q");
            assertEquals(3, moved.exit(), moved.err());
            assertTrue(moved.err().contains("(the tag moved)"), moved.err());
            assertFalse(Files.exists(p.resolve("moved.ext4")));
            // Without --locked the build takes the new digest and records it.
            String before = Files.readString(p.resolve("kiln.lock"));
            var update = CliRunner.run("build", "-f", p.resolve("kiln.yaml").toString(), "-q");
            assertEquals(0, update.exit(), update.err());
            assertFalse(before.equals(Files.readString(p.resolve("kiln.lock"))), "the lock follows the new digest");
        }
    }
}
