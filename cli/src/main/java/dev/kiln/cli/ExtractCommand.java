package dev.kiln.cli;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.image.TarExport;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "extract",
        description = {"Extracts an image's tree into a directory or a PAX tar archive.",
            "--to keeps modes, times, symlinks and hard links, and owners, devices and all xattrs when run as root "
                    + "(user.* xattrs otherwise, where the host file system supports them).",
            "--tar writes numeric owners, nanosecond times, xattrs, hard links and devices without root; the "
                    + "archive is usable as a tar: build source."})
final class ExtractCommand extends StandardOptions implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "IMAGE", description = "The ext2/3/4 image file.") Path image;

    @ArgGroup(exclusive = true, multiplicity = "1") Target target;

    static final class Target {
        @Option(names = "--to", paramLabel = "DIR", description = "A new or empty directory.") Path dir;

        @Option(names = "--tar", paramLabel = "FILE", description = "A PAX tar file ('-' for stdout).") Path tar;
    }

    @Option(names = "--stacktrace", hidden = true) boolean stacktrace;

    @Override
    public Integer call() throws Exception {
        try (Ext4Reader r = ImageCommands.open(image, spec.commandLine().getErr())) {
            if (target.tar != null) {
                return toTar(r);
            }
            return toDir(r);
        }
    }

    private int toTar(Ext4Reader r) throws IOException {
        int skipped;
        if (target.tar.toString().equals("-")) {
            skipped = TarExport.write(r, ImageCommands.Cat.stdout);
        } else {
            Path abs = target.tar.toAbsolutePath();
            Path tmp = Files.createTempFile(abs.getParent(), "." + abs.getFileName() + ".", ".tmp");
            boolean done = false;
            try {
                try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(tmp), 1 << 16)) {
                    skipped = TarExport.write(r, out);
                }
                Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                done = true;
            } finally {
                if (!done) {
                    Files.deleteIfExists(tmp);
                }
            }
        }
        if (skipped > 0) {
            spec.commandLine().getErr().println("kiln: skipped " + skipped + " socket(s): tar cannot hold sockets");
        }
        return Kiln.OK;
    }

    private int toDir(Ext4Reader r) throws Exception {
        Path dir = target.dir;
        boolean created = false;
        if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
                throw new Errors.UsageException(dir + ": exists and is not a directory");
            }
            try (var s = Files.list(dir)) {
                if (s.findAny().isPresent()) {
                    throw new Errors.UsageException(dir + ": is not empty; extract into a new or empty directory");
                }
            }
        } else {
            Files.createDirectories(dir);
            created = true;
        }
        int skipped;
        boolean done = false;
        try {
            skipped = dev.kiln.image.DirExport.write(r, dir);
            done = true;
        } finally {
            if (!done) {
                // A failed extraction leaves what it found: an empty directory, or none if it made it.
                removeContents(dir, created);
            }
        }
        if (skipped > 0) {
            spec.commandLine().getErr().println("kiln: skipped " + skipped
                    + " device node(s) or socket(s): creating them needs root");
        }
        return Kiln.OK;
    }

    private static void removeContents(Path dir, boolean andDir) {
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).filter(p -> andDir || !p.equals(dir)).forEach(p -> {
                try {
                    if (!Files.isSymbolicLink(p)) {
                        p.toFile().setWritable(true);
                    }
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    // best effort; the error that stopped the extraction is what is reported
                }
            });
        } catch (IOException | RuntimeException e) {
            // best effort
        }
    }
}
