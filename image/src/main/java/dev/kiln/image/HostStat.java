package dev.kiln.image;

import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.Map;

/**
 * What {@code lstat} says about a host path, the fields a {@code dir:} walk uses.
 *
 * <p>The JDK gives numeric owners, inode numbers and the like only through the {@code unix:}
 * attribute view, which builds a map of boxed values per call: half of the 5.7 µs that reading
 * the attributes of a small file cost (30,000 files: 170 ms against 85). The object behind
 * {@link PosixFileAttributes} on Linux ({@code sun.nio.fs.UnixFileAttributes}) holds the same
 * {@code stat} fields; when {@code java.base/sun.nio.fs} is open to kiln (the jar's manifest
 * says so, as {@link RawPaths} needs), they are read from it directly. Elsewhere (kiln used as a
 * library without that option, another JDK layout) the map is used, with the same result.
 */
record HostStat(int mode, long ino, long dev, int nlink, int uid, int gid, long size, long rdev,
        FileTime mtime, FileTime ctime) {

    /**
     * One lstat's worth, for the map fallback. Not "unix:*": that also resolves the owner and
     * group names, which reads /etc/passwd and /etc/group (or asks nscd) for every file and cost
     * two thirds of the time of a dir: build of 30,000 small files.
     */
    private static final String ATTRIBUTES = "unix:mode,ino,dev,nlink,uid,gid,size,rdev,lastModifiedTime,ctime";
    private static final LinkOption[] NOFOLLOW = {LinkOption.NOFOLLOW_LINKS};

    /** Getters of sun.nio.fs.UnixFileAttributes, or null when the package is closed to us. */
    private static final MethodHandle MODE;
    private static final MethodHandle INO;
    private static final MethodHandle DEV;
    private static final MethodHandle NLINK;
    private static final MethodHandle UID;
    private static final MethodHandle GID;
    private static final MethodHandle RDEV;
    private static final MethodHandle CTIME;
    /** sun.nio.fs.UnixFileAttributes, when its getters are open to us. */
    private static final Class<?> UNIX;

    static {
        MethodHandle mode = null;
        MethodHandle ino = null;
        MethodHandle dev = null;
        MethodHandle nlink = null;
        MethodHandle uid = null;
        MethodHandle gid = null;
        MethodHandle rdev = null;
        MethodHandle ctime = null;
        Class<?> unix = null;
        try {
            Class<?> c = Class.forName("sun.nio.fs.UnixFileAttributes");
            if (c.getModule().isOpen("sun.nio.fs", HostStat.class.getModule())) {
                MethodHandles.Lookup l = MethodHandles.privateLookupIn(c, MethodHandles.lookup());
                mode = getter(l, c, "mode", int.class);
                ino = getter(l, c, "ino", long.class);
                dev = getter(l, c, "dev", long.class);
                nlink = getter(l, c, "nlink", int.class);
                uid = getter(l, c, "uid", int.class);
                gid = getter(l, c, "gid", int.class);
                rdev = getter(l, c, "rdev", long.class);
                ctime = getter(l, c, "ctime", FileTime.class);
                unix = c;
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            unix = null; // not this JDK's layout, or not open to us: the attribute map it is
        }
        MODE = mode;
        INO = ino;
        DEV = dev;
        NLINK = nlink;
        UID = uid;
        GID = gid;
        RDEV = rdev;
        CTIME = ctime;
        UNIX = unix;
    }

    private static MethodHandle getter(MethodHandles.Lookup l, Class<?> c, String name, Class<?> type)
            throws ReflectiveOperationException {
        return l.findVirtual(c, name, MethodType.methodType(type)).asType(MethodType.methodType(type, Object.class));
    }

    /** Whether the fields are read from the JDK's stat object rather than an attribute map. */
    static boolean direct() {
        return UNIX != null;
    }

    /** {@code lstat(p)}. */
    static HostStat of(Path p) throws IOException {
        if (UNIX != null) {
            PosixFileAttributes a = Files.readAttributes(p, PosixFileAttributes.class, NOFOLLOW);
            if (a.getClass() == UNIX) {
                return fromUnix(a);
            }
        }
        return viaMap(p);
    }

    /** The fields of a {@code sun.nio.fs.UnixFileAttributes} (only when {@link #direct()}). */
    static HostStat fromUnix(Object o) {
        PosixFileAttributes a = (PosixFileAttributes) o;
        try {
            return new HostStat((int) MODE.invokeExact(o), (long) INO.invokeExact(o), (long) DEV.invokeExact(o),
                    (int) NLINK.invokeExact(o), (int) UID.invokeExact(o), (int) GID.invokeExact(o), a.size(),
                    (long) RDEV.invokeExact(o), a.lastModifiedTime(), (FileTime) CTIME.invokeExact(o));
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException(e); // the getters declare nothing
        }
    }

    /** The JDK's stat object class, when {@link #direct()}. */
    static Class<?> unixAttributes() {
        return UNIX;
    }

    /** {@code lstat(p)} through the {@code unix:} attribute view, whatever {@link #direct()} says. */
    static HostStat viaMap(Path p) throws IOException {
        return fromMap(Files.readAttributes(p, ATTRIBUTES, NOFOLLOW));
    }

    private static HostStat fromMap(Map<String, Object> a) {
        return new HostStat((Integer) a.get("mode"), (Long) a.get("ino"), (Long) a.get("dev"), (Integer) a.get("nlink"),
                (Integer) a.get("uid"), (Integer) a.get("gid"), (Long) a.get("size"), (Long) a.get("rdev"),
                (FileTime) a.get("lastModifiedTime"), (FileTime) a.get("ctime"));
    }

    /** The file type bits of {@link #mode()}. */
    int type() {
        return mode & 0170000;
    }

    /** The host file a hard link names. */
    LinkKey linkKey() {
        return new LinkKey(dev, ino);
    }

    /**
     * A host file by device and inode number (a string of the two cost twice the memory, built
     * twice a name). Its equals and hashCode are written out: a record's own are bootstrapped by
     * an invokedynamic call on first use, ~30 ms of the walk thread in a cold JVM (a wall
     * profile of the Debian base from {@code dir:}), at the first hard link of a build.
     */
    record LinkKey(long dev, long ino) {
        @Override
        public boolean equals(Object o) {
            return o instanceof LinkKey k && k.dev == dev && k.ino == ino;
        }

        @Override
        public int hashCode() {
            return Long.hashCode(ino * 31 + dev);
        }
    }
}
