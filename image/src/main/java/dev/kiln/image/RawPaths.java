package dev.kiln.image;

import dev.kiln.ext4.Names;
import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Path;

/**
 * Host file names as the bytes they are. The JDK decodes names with the platform charset and
 * turns bytes that are not UTF-8 into U+FFFD, so two such names collapse into one; it keeps the
 * bytes inside its Unix path objects, though. With {@code --add-opens
 * java.base/sun.nio.fs=ALL-UNNAMED} (the {@code kiln} launcher passes it) kiln reads and makes
 * those bytes directly; without it, a name that is not UTF-8 is an error, never a silent loss.
 */
public final class RawPaths {
    private static final Method AS_BYTES;
    private static final Constructor<?> FROM_BYTES;

    static {
        Method m = null;
        Constructor<?> c = null;
        try {
            FileSystem fs = FileSystems.getDefault();
            Class<?> unixPath = Class.forName("sun.nio.fs.UnixPath");
            Class<?> unixFs = Class.forName("sun.nio.fs.UnixFileSystem");
            m = unixPath.getDeclaredMethod("asByteArray");
            m.setAccessible(true);
            c = unixPath.getDeclaredConstructor(unixFs, byte[].class);
            c.setAccessible(true);
            if (!unixFs.isInstance(fs)) {
                m = null;
                c = null;
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            // not opened (or not a Unix JDK): names that are not UTF-8 are refused
            m = null;
            c = null;
        }
        AS_BYTES = m;
        FROM_BYTES = c;
    }

    private RawPaths() {}

    /** Whether names that are not UTF-8 can be carried. */
    public static boolean available() {
        return AS_BYTES != null;
    }

    /** The last component of {@code p} as kiln carries names ({@link Names}). */
    public static String name(Path p) {
        if (AS_BYTES != null) {
            // The last component of the path's own bytes: no file-name path object, and no
            // decoding by the JDK whose result would be thrown away.
            try {
                byte[] b = (byte[]) AS_BYTES.invoke(p);
                int end = b.length;
                while (end > 1 && b[end - 1] == '/') {
                    end--;
                }
                int from = end;
                while (from > 0 && b[from - 1] != '/') {
                    from--;
                }
                if (from < end) {
                    return Names.decode(b, from, end - from);
                }
            } catch (ReflectiveOperationException e) {
                // fall through to the checked string
            }
        }
        String s = p.getFileName().toString();
        if (s.indexOf('\uFFFD') >= 0) {
            throw new InvalidSourceException(p + ": the name is not UTF-8, and this JVM cannot read its bytes; run kiln "
                    + "with its launcher, or add --add-opens java.base/sun.nio.fs=ALL-UNNAMED to the java command");
        }
        return s;
    }

    /** A whole path (a symlink's target, a relative path) as kiln carries names. */
    public static String string(Path p) {
        if (AS_BYTES != null) {
            try {
                return Names.decode((byte[]) AS_BYTES.invoke(p));
            } catch (ReflectiveOperationException e) {
                // fall through
            }
        }
        String s = p.toString();
        if (s.indexOf('\uFFFD') >= 0) {
            throw new InvalidSourceException(p + ": not UTF-8, and this JVM cannot read its bytes; run kiln with its "
                    + "launcher, or add --add-opens java.base/sun.nio.fs=ALL-UNNAMED to the java command");
        }
        return s;
    }

    /** A path (e.g. a symlink target to create) with the exact bytes of a string kiln carries. */
    public static Path of(String s) {
        if (!Names.hasRawBytes(s)) {
            return Path.of(s);
        }
        if (FROM_BYTES == null) {
            throw new InvalidSourceException(Names.printable(s) + ": not UTF-8, and this JVM cannot make it; run kiln with "
                    + "its launcher, or add --add-opens java.base/sun.nio.fs=ALL-UNNAMED");
        }
        try {
            return (Path) FROM_BYTES.newInstance(FileSystems.getDefault(), Names.encode(s));
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    /** {@code dir} resolved with a name kiln carries, with the name's exact bytes. */
    public static Path resolve(Path dir, String name) {
        if (!Names.hasRawBytes(name)) {
            return dir.resolve(name);
        }
        if (FROM_BYTES == null) {
            throw new InvalidSourceException(dir.resolve(Names.printable(name)) + ": the name is not UTF-8, and this JVM "
                    + "cannot make it; run kiln with its launcher, or add --add-opens java.base/sun.nio.fs=ALL-UNNAMED");
        }
        try {
            Path f = (Path) FROM_BYTES.newInstance(FileSystems.getDefault(), Names.encode(name));
            return dir.resolve(f);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A path inside {@code root} for an image path ("/a/b"), component by component. */
    public static Path inside(Path root, String imagePath) {
        Path out = root;
        for (String part : imagePath.split("/")) {
            if (!part.isEmpty()) {
                out = resolve(out, part);
            }
        }
        return out;
    }
}
