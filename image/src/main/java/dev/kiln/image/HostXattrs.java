package dev.kiln.image;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

/**
 * Every xattr of a host tree, all namespaces ({@code security.*}, {@code trusted.*},
 * {@code system.posix_acl_*}, {@code user.*}), read with getfattr (the JDK reads only
 * {@code user.*}): of the whole tree ({@link #dump}), or of its links and special files alone
 * ({@link #dumpSpecial}) when the walk reads the rest from descriptors ({@link HostFd}). Which
 * namespaces can be read depends on the caller's privileges: {@code trusted.*} needs root in
 * the initial user namespace.
 */
final class HostXattrs {
    private HostXattrs() {}

    /**
     * {@link #dump}, or with {@code special} {@link #dumpSpecial}, on a thread of its own, so a
     * walk of the same tree can go on beside it.
     */
    static java.util.concurrent.Future<Map<String, Map<String, byte[]>>> dumpAsync(Path root, boolean special) {
        java.util.concurrent.FutureTask<Map<String, Map<String, byte[]>>> task =
                new java.util.concurrent.FutureTask<>(() -> special ? dumpSpecial(root) : dump(root));
        Thread t = new Thread(task, "kiln-xattrs");
        t.setDaemon(true);
        t.start();
        return task;
    }

    /**
     * Image path ("/etc/x", relative to {@code root}) to its xattrs; null when getfattr is not
     * installed. Paths without xattrs are absent.
     */
    static Map<String, Map<String, byte[]>> dump(Path root) throws IOException {
        Path getfattr = UserNamespace.which("getfattr");
        if (getfattr == null) {
            return null;
        }
        String base = root.toAbsolutePath().normalize().toString();
        // The one found, also in /usr/bin or /sbin when PATH lacks them (as for cron or systemd).
        return read(new ProcessBuilder(getfattr.toString(), "-R", "-P", "-h", "-d", "-m", "-", "-e", "hex",
                "--absolute-names", base), root, base, false);
    }

    /**
     * The xattrs of the one file {@code file} (a symbolic link's own), as {@link #dump} gives
     * them under "/"; null when getfattr is not installed. For the rare file the walk cannot
     * open (an empty file without read permission, which getfattr lists by path).
     */
    static Map<String, Map<String, byte[]>> dumpOne(Path file) throws IOException {
        Path getfattr = UserNamespace.which("getfattr");
        if (getfattr == null) {
            return null;
        }
        String base = file.toAbsolutePath().normalize().toString();
        if (base.indexOf('\uFFFD') >= 0) {
            throw new InvalidSourceException(file + ": permission denied, and its name is not UTF-8, so getfattr cannot "
                    + "be asked for its xattrs; run as a user who can read it");
        }
        return read(new ProcessBuilder(getfattr.toString(), "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", "--",
                base), file, base, false);
    }

    /** The exit status of the shell below when find or xargs is missing. */
    private static final int NO_FIND = 99;

    /**
     * As {@link #dump}, but only of the symbolic links and special files (devices, FIFOs,
     * sockets): the walk reads the xattrs of regular files and directories itself ({@link
     * HostFd}). {@code find} lists them from the directory entries' types, without a stat of
     * every file, and getfattr is run on those alone: the Linux source tree's 56 links in 0.17 s
     * against 0.46 s for all its 84,000 entries; a million files 0.4 s against 4.3. Without
     * find or xargs, the whole tree's dump.
     */
    static Map<String, Map<String, byte[]>> dumpSpecial(Path root) throws IOException {
        Path getfattr = UserNamespace.which("getfattr");
        if (getfattr == null) {
            return null;
        }
        String base = root.toAbsolutePath().normalize().toString();
        Map<String, Map<String, byte[]>> out = read(new ProcessBuilder("/bin/sh", "-c",
                "command -v find >/dev/null && command -v xargs >/dev/null || exit " + NO_FIND + "\n"
                        + "find -H \"$1\" \\( -type l -o -type b -o -type c -o -type p -o -type s \\) -print0"
                        + " | xargs -0 -r \"$2\" -h -d -m - -e hex --absolute-names --",
                "sh", base, getfattr.toString()), root, base, true);
        return out != null ? out : dump(root);
    }

    /** Runs a getfattr dump of {@code base} and reads it; null when the {@code shell} said {@link #NO_FIND}. */
    private static Map<String, Map<String, byte[]>> read(ProcessBuilder pb, Path root, String base, boolean shell)
            throws IOException {
        Process p = pb.redirectError(ProcessBuilder.Redirect.DISCARD).start();
        p.getOutputStream().close();
        Map<String, Map<String, byte[]>> out = new HashMap<>();
        // getfattr prints bytes; read them one char a byte, and compare with the root's bytes likewise.
        String baseBytes = new String(base.getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1);
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.ISO_8859_1))) {
            parse(in, baseBytes, out);
        }
        try {
            if (p.waitFor() == NO_FIND && shell && out.isEmpty()) {
                return null;
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while reading xattrs of " + root);
        }
        return out;
    }

    /** getfattr's dump format: "# file: PATH" (octal escapes), then NAME=0xHEX lines, then a blank line. */
    static void parse(BufferedReader in, String base, Map<String, Map<String, byte[]>> out) throws IOException {
        String line;
        Map<String, byte[]> current = null;
        while ((line = in.readLine()) != null) {
            if (line.startsWith("# file: ")) {
                String file = unescape(line.substring(8));
                String rel = file.equals(base) ? "/" : file.startsWith(base + "/") ? file.substring(base.length()) : null;
                current = rel == null ? null : out.computeIfAbsent(bytesName(rel), k -> new TreeMap<>());
            } else if (current != null && !line.isEmpty() && !line.startsWith("#")) {
                int eq = line.indexOf('=');
                String name = utf8(unescape(eq < 0 ? line : line.substring(0, eq)));
                String v = eq < 0 ? "" : line.substring(eq + 1);
                byte[] value;
                if (v.startsWith("0x")) {
                    value = HexFormat.of().parseHex(v.substring(2));
                } else if (v.startsWith("\"") && v.endsWith("\"") && v.length() >= 2) {
                    value = unescape(v.substring(1, v.length() - 1)).getBytes(StandardCharsets.ISO_8859_1);
                } else {
                    value = new byte[0];
                }
                current.put(name, value);
            }
        }
    }

    /** getfattr writes bytes that are not printable as \ooo and a backslash as \\; read back as bytes (ISO-8859-1). */
    static String unescape(String s) {
        if (s.indexOf('\\') < 0) {
            return s;
        }
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && isOctal(s, i + 1)) {
                b.write(Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else if (c == '\\' && i + 1 < s.length() && s.charAt(i + 1) == '\\') {
                b.write('\\');
                i++;
            } else {
                b.write(c);
            }
        }
        return b.toString(StandardCharsets.ISO_8859_1);
    }

    private static boolean isOctal(String s, int from) {
        if (from + 3 > s.length()) {
            return false;
        }
        for (int i = from; i < from + 3; i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '7') {
                return false;
            }
        }
        return true;
    }

    /** A path read as ISO-8859-1 (one char a byte) as kiln carries names ({@link dev.kiln.ext4.Names}). */
    static String bytesName(String latin1) {
        return dev.kiln.ext4.Names.decode(latin1.getBytes(StandardCharsets.ISO_8859_1));
    }

    /** Names as the JDK gives them (UTF-8 decoded) from ISO-8859-1 byte strings. */
    static String utf8(String latin1) {
        return new String(latin1.getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8);
    }
}
