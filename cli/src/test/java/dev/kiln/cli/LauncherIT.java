package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The project's {@code ./kiln} launcher: found from any working directory, options passed as written. */
class LauncherIT {
    private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    @TempDir
    Path tmp;

    private String run(Path cwd, String launcher, String javaOpts, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("bash", launcher));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(cwd.toFile()).redirectErrorStream(true);
        pb.environment().remove("KILN_JAVA_OPTS");
        if (javaOpts != null) {
            pb.environment().put("KILN_JAVA_OPTS", javaOpts);
        }
        Process p = pb.start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "the launcher finished");
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    @Test
    void theLauncherFindsItsJarByARelativePathFromAnotherDirectory() throws Exception {
        assertTrue(Files.isRegularFile(ROOT.resolve("kiln")), "the launcher is at the project's root: " + ROOT);
        String v = run(ROOT, "./kiln", null, "--version");
        assertTrue(v.startsWith("kiln "), v);
        assertEquals(v, run(ROOT.getParent(), ROOT.getFileName() + "/kiln", null, "--version"));
        assertEquals(v, run(tmp, ROOT.resolve("kiln").toString(), null, "--version"));
    }

    @Test
    void versionPrintsPicocliVersionLineWithoutReadingAnyAnnotations() throws Exception {
        Path log = tmp.resolve("version-classes.log");
        String v = run(ROOT, "./kiln", "-Xlog:class+load=info:file=" + log, "--version");
        assertEquals(v, run(ROOT, "./kiln", null, "-V"));
        assertEquals(v, run(ROOT, "./kiln", null, "build", "-V"), "picocli's version help prints the same");
        String loaded = Files.readString(log);
        assertTrue(loaded.contains("dev.kiln.cli.Kiln "), loaded);
        assertFalse(loaded.contains("CommandLine$Model$CommandReflection"), "no annotated command model");
        assertFalse(loaded.contains("$Proxy"), "no annotation proxies");
    }

    @Test
    void theHeapGetsTransparentHugePagesExactlyWhereTheKernelGivesThemOnRequest() throws Exception {
        Path sys = Path.of("/sys/kernel/mm/transparent_hugepage/enabled");
        String mode = Files.isReadable(sys) ? Files.readString(sys) : "(none)";
        String out = run(ROOT, "./kiln", "-Xlog:pagesize=info", "--version");
        assertEquals(mode.contains("[madvise]"), out.contains("UseTransparentHugePages=1"), "THP " + mode + ": " + out);
        String plain = run(ROOT, "./kiln", null, "--version");
        assertTrue(plain.matches("kiln \\S+\n"), "one line, no JVM warning: " + plain);
    }

    @Test
    void theClassArchiveHoldsWhatTarAndDirBuildsLoad() throws Exception {
        // The launcher's training run builds from tar: and, in the same process, from dir:
        // (-Dkiln.training.then), so neither parses and verifies its classes at run time.
        Path tree = Files.createDirectories(tmp.resolve("tree/etc"));
        Files.writeString(tree.resolve("hostname"), "kiln\n");
        Files.createSymbolicLink(tree.resolve("name"), Path.of("hostname"));
        Path log = tmp.resolve("classes.log");
        Path cds = tmp.resolve("cds.log");
        run(tmp, ROOT.resolve("kiln").toString(), "-Xlog:class+load=info:file=" + log + " -Xlog:cds=info:file=" + cds,
                "build", "--image", "dir:" + tmp.resolve("tree"), "-o", tmp.resolve("d.ext4").toString(), "--size", "8M",
                "-q");
        // The smaller archive: a build from a tree reads no registry documents (Jackson).
        assertTrue(Files.readString(cds).contains("Opened archive " + ROOT.resolve("cli/target/kiln-local.jsa")),
                Files.readString(cds).lines().limit(3).toList().toString());
        String loaded = Files.readString(log);
        for (String c : List.of("dev.kiln.image.DirSource ", "dev.kiln.image.HostStat ", "dev.kiln.image.HostXattrs ",
                "dev.kiln.image.ReadAhead ", "java.lang.ProcessImpl ", "dev.kiln.ext4.Ext4Writer ")) {
            String line = loaded.lines().filter(l -> l.contains(" " + c)).findFirst().orElse("(not loaded)");
            assertTrue(line.contains("source: shared objects file"), c + "from the archive: " + line);
        }
    }

    @Test
    void theTrainingsOciLayoutIsOneKilnReadsAndItsClassesAreArchived() throws Exception {
        // The training's third build reads an OCI layout that training.sh makes with tar, gzip
        // and sha256sum; a registry base goes through the same documents and layer code.
        Path tree = Files.createDirectories(tmp.resolve("tree/etc"));
        Files.writeString(tree.resolve("hostname"), "kiln\n");
        Path layout = tmp.resolve("layout");
        Process p = new ProcessBuilder("bash", "-c", "source \"$1\" && kiln_training_oci \"$2\" \"$3\" amd64", "bash",
                ROOT.resolve("cli/src/main/jvm/training.sh").toString(), tmp.resolve("tree").toString(), layout.toString())
                .redirectErrorStream(true).start();
        String made = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), made);
        Path log = tmp.resolve("classes.log");
        Path cds = tmp.resolve("cds.log");
        Path img = tmp.resolve("o.ext4");
        run(tmp, ROOT.resolve("kiln").toString(), "-Xlog:class+load=info:file=" + log + " -Xlog:cds=info:file=" + cds,
                "build", "--image", "oci:" + layout + ":t", "--platform", "linux/amd64", "-o", img.toString(), "--size",
                "8M", "-q");
        assertTrue(Files.readString(cds).contains("Opened archive " + ROOT.resolve("cli/target/kiln.jsa")),
                Files.readString(cds).lines().limit(3).toList().toString());
        String listing = run(tmp, ROOT.resolve("kiln").toString(), null, "ls", img.toString(), "/etc");
        assertTrue(listing.contains("hostname"), listing);
        String loaded = Files.readString(log);
        for (String c : List.of("dev.kiln.image.OciSource ", "dev.kiln.image.OciJson$Manifest ",
                "com.fasterxml.jackson.databind.ObjectMapper ", "com.fasterxml.jackson.databind.deser.BeanDeserializer ")) {
            String line = loaded.lines().filter(l -> l.contains(" " + c)).findFirst().orElse("(not loaded)");
            assertTrue(line.contains("source: shared objects file"), c + "from the archive: " + line);
        }
    }

    @Test
    void aGlobInKilnJavaOptsReachesTheJvmAsWritten() throws Exception {
        // The staleness check turns on nullglob; an unquoted -Xlog:gc*=... must not vanish.
        Path log = tmp.resolve("gc.log");
        run(tmp, ROOT.resolve("kiln").toString(), "-Xlog:gc*=info:file=" + log, "--version");
        assertTrue(Files.isRegularFile(log) && Files.size(log) > 0, "the JVM wrote the log the option asked for");
    }
}
