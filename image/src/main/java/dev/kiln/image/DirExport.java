package dev.kiln.image;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.FileStat;
import dev.kiln.ext4.FileType;
import java.io.IOException;
import java.io.InputStream;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * An image's tree written into a host directory: modes, times, symlinks, hard links and FIFOs
 * always; owners, device nodes and every xattr namespace when running as root ({@code user.*}
 * otherwise). FIFOs and device nodes get their metadata from mkfifo/mknod/chown/touch, because
 * the JDK opens a path to change it and opening a FIFO blocks.
 */
public final class DirExport {
    private DirExport() {}

    public static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    /** Extracts into {@code dir} (which must exist and be empty); returns the entries skipped. */
    public static int write(Ext4Reader r, Path dir) throws IOException {
        return write(r, dir, false);
    }

    /**
     * As {@link #write(Ext4Reader, Path)}; with {@code staging}, what this process cannot make
     * (a device node or socket in a user namespace, an owner outside its id map) does not stop
     * the export: such an entry becomes an empty placeholder file with mode 0, or keeps the owner
     * it got. The caller restores them from the image afterwards ({@link ScriptStage}).
     */
    static int write(Ext4Reader r, Path dir, boolean staging) throws IOException {
        boolean root = isRoot();
        Map<Long, Path> firstPath = new HashMap<>();
        List<Object[]> dirTimes = new ArrayList<>();
        int[] skipped = {0};
        r.walk((p, st) -> {
            Path out = RawPaths.inside(dir, p);
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
                case SYMLINK -> Files.createSymbolicLink(out, RawPaths.of(r.readLink(st.ino())));
                case FIFO, CHAR_DEVICE, BLOCK_DEVICE -> {
                    if (st.type() != FileType.FIFO && !root) {
                        placeholder(out, staging);
                        skipped[0]++;
                        return;
                    }
                    try {
                        special(out, st, root, staging);
                    } catch (IOException e) {
                        if (!staging) {
                            throw e;
                        }
                        Files.deleteIfExists(out);
                        placeholder(out, true);
                        skipped[0]++;
                    }
                    return;
                }
                default -> {
                    placeholder(out, staging);
                    skipped[0]++;
                    return;
                }
            }
            applyMetadata(r, out, st, root, staging);
            if (st.isDirectory()) {
                dirTimes.add(new Object[] {out, st});
            }
        });
        // Directory times last: creating their children changed them.
        for (int i = dirTimes.size() - 1; i >= 0; i--) {
            setTimes((Path) dirTimes.get(i)[0], (FileStat) dirTimes.get(i)[1]);
        }
        return skipped[0];
    }

    private static void placeholder(Path out, boolean staging) throws IOException {
        if (staging) {
            Files.createFile(out);
            Files.setAttribute(out, "unix:mode", 0, LinkOption.NOFOLLOW_LINKS);
        }
    }

    private static void applyMetadata(Ext4Reader r, Path out, FileStat st, boolean root, boolean staging)
            throws IOException {
        if (root) {
            try {
                Files.setAttribute(out, "unix:uid", (int) st.uid(), LinkOption.NOFOLLOW_LINKS);
                Files.setAttribute(out, "unix:gid", (int) st.gid(), LinkOption.NOFOLLOW_LINKS);
            } catch (java.nio.file.FileSystemException e) {
                if (!staging) {
                    throw e;
                }
                // An owner outside the namespace's id map: restored from the image afterwards.
            }
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
    private static void special(Path out, FileStat st, boolean root, boolean staging) throws IOException {
        String mode = Integer.toOctalString(st.mode());
        if (st.type() == FileType.FIFO) {
            run(List.of("mkfifo", "-m", mode, out.toString()));
        } else {
            run(List.of("mknod", "-m", mode, out.toString(), st.type() == FileType.CHAR_DEVICE ? "c" : "b",
                    Integer.toString(st.major()), Integer.toString(st.minor())));
        }
        if (root) {
            try {
                run(List.of("chown", "-h", st.uid() + ":" + st.gid(), out.toString()));
            } catch (IOException e) {
                if (!staging) {
                    throw e;
                }
            }
            run(List.of("chmod", mode, out.toString()));
        }
        run(List.of("touch", "-h", "-m", "-d", "@" + stamp(st.mtime()), out.toString()));
        run(List.of("touch", "-h", "-a", "-d", "@" + stamp(st.atime()), out.toString()));
    }

    private static String stamp(Instant t) {
        return BigDecimal.valueOf(t.getEpochSecond()).add(BigDecimal.valueOf(t.getNano(), 9))
                .toPlainString();
    }

    private static void setfattr(Path p, String name, byte[] value) {
        try {
            run(List.of("setfattr", "-h", "-n", name, "-v", "0x" + HexFormat.of().formatHex(value),
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
