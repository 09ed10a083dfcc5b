package dev.kiln.cli;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.FileStat;
import dev.kiln.image.TarExport;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "extract", mixinStandardHelpOptions = true,
        description = {"Extracts an image's tree into a directory or a PAX tar archive.",
            "--to keeps modes, times, symlinks and hard links, and owners, devices and all xattrs when run as root "
                    + "(user.* xattrs otherwise, where the host file system supports them).",
            "--tar writes numeric owners, nanosecond times, xattrs, hard links and devices without root; the "
                    + "archive is usable as a tar: build source."})
final class ExtractCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "IMAGE") Path image;

    @ArgGroup(exclusive = true, multiplicity = "1") Target target;

    static final class Target {
        @Option(names = "--to", paramLabel = "DIR", description = "A new or empty directory.") Path dir;

        @Option(names = "--tar", paramLabel = "FILE", description = "A PAX tar file ('-' for stdout).") Path tar;
    }

    @Option(names = "--stacktrace", hidden = true) boolean stacktrace;

    @Override
    public Integer call() throws Exception {
        try (Ext4Reader r = ImageCommands.open(image)) {
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
        }
        boolean root = "root".equals(System.getProperty("user.name"));
        Map<Long, Path> firstPath = new HashMap<>();
        List<Object[]> dirTimes = new ArrayList<>();
        int[] skipped = {0};
        r.walk((p, st) -> {
            Path out = p.equals("/") ? dir : dir.resolve(p.substring(1));
            if (!st.isDirectory() && st.links() > 1) {
                Path first = firstPath.putIfAbsent(st.ino(), out);
                if (first != null) {
                    Files.createLink(out, first);
                    return;
                }
            }
            switch (st.type()) {
                case DIRECTORY -> {
                    if (!p.equals("/")) {
                        Files.createDirectory(out);
                    }
                }
                case REGULAR -> {
                    try (InputStream in = r.open(st.ino())) {
                        Files.copy(in, out);
                    }
                }
                case SYMLINK -> Files.createSymbolicLink(out, Path.of(r.readLink(st.ino())));
                case FIFO, CHAR_DEVICE, BLOCK_DEVICE -> {
                    if (st.type() != dev.kiln.ext4.FileType.FIFO && !root) {
                        skipped[0]++;
                        return;
                    }
                    special(out, st, root);
                    return;
                }
                default -> {
                    skipped[0]++;
                    return;
                }
            }
            applyMetadata(r, out, st, root);
            if (st.isDirectory()) {
                dirTimes.add(new Object[] {out, st});
            }
        });
        // Directory times last: creating their children changed them.
        for (int i = dirTimes.size() - 1; i >= 0; i--) {
            Path p = (Path) dirTimes.get(i)[0];
            FileStat st = (FileStat) dirTimes.get(i)[1];
            setTimes(p, st);
        }
        if (skipped[0] > 0) {
            spec.commandLine().getErr().println("kiln: skipped " + skipped[0]
                    + " device node(s) or socket(s): creating them needs root");
        }
        return Kiln.OK;
    }

    private static void applyMetadata(Ext4Reader r, Path out, FileStat st, boolean root) throws IOException {
        if (root) {
            Files.setAttribute(out, "unix:uid", (int) st.uid(), LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(out, "unix:gid", (int) st.gid(), LinkOption.NOFOLLOW_LINKS);
        }
        if (!st.isSymlink()) {
            // After chown, which clears setuid/setgid.
            Files.setAttribute(out, "unix:mode", st.mode(), LinkOption.NOFOLLOW_LINKS);
            Map<String, byte[]> x = r.xattrs(st.ino());
            if (!x.isEmpty() && (st.isRegular() || st.isDirectory())) {
                UserDefinedFileAttributeView v = Files.getFileAttributeView(out, UserDefinedFileAttributeView.class);
                for (Map.Entry<String, byte[]> e : x.entrySet()) {
                    if (e.getKey().startsWith("user.") && v != null) {
                        try {
                            v.write(e.getKey().substring(5), ByteBuffer.wrap(e.getValue()));
                        } catch (IOException | UnsupportedOperationException ex) {
                            // The host file system has no user xattrs here.
                        }
                    } else if (root) {
                        setfattr(out, e.getKey(), e.getValue());
                    }
                }
            }
        }
        setTimes(out, st);
    }

    /**
     * FIFOs and device nodes get all their metadata from commands: the JDK opens a path to
     * change its mode, owner or times, and opening a FIFO blocks (a device could react).
     */
    private static void special(Path out, FileStat st, boolean root) throws IOException {
        String mode = Integer.toOctalString(st.mode());
        if (st.type() == dev.kiln.ext4.FileType.FIFO) {
            run(List.of("mkfifo", "-m", mode, out.toString()));
        } else {
            run(List.of("mknod", "-m", mode, out.toString(), st.type() == dev.kiln.ext4.FileType.CHAR_DEVICE ? "c" : "b",
                    Integer.toString(st.major()), Integer.toString(st.minor())));
        }
        if (root) {
            run(List.of("chown", "-h", st.uid() + ":" + st.gid(), out.toString()));
            run(List.of("chmod", mode, out.toString()));
        }
        run(List.of("touch", "-h", "-m", "-d", "@" + stamp(st.mtime()), out.toString()));
        run(List.of("touch", "-h", "-a", "-d", "@" + stamp(st.atime()), out.toString()));
    }

    private static String stamp(java.time.Instant t) {
        return java.math.BigDecimal.valueOf(t.getEpochSecond()).add(java.math.BigDecimal.valueOf(t.getNano(), 9))
                .toPlainString();
    }

    private static void setfattr(Path p, String name, byte[] value) {
        try {
            run(List.of("setfattr", "-h", "-n", name, "-v", "0x" + java.util.HexFormat.of().formatHex(value),
                    p.toString()));
        } catch (IOException e) {
            // Not every host allows every namespace (security.* under some LSMs); the rest goes on.
        }
    }

    private static void setTimes(Path p, FileStat st) throws IOException {
        Files.getFileAttributeView(p, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
                .setTimes(FileTime.from(st.mtime()), FileTime.from(st.atime()), null);
    }

    private static void run(List<String> cmd) throws IOException {
        try {
            Process pr = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(pr.getInputStream().readAllBytes());
            if (pr.waitFor() != 0) {
                throw new IOException(String.join(" ", cmd) + " failed: " + out.trim());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }
}
