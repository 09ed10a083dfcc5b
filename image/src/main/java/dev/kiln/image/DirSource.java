package dev.kiln.image;

import dev.kiln.ext4.EntryException;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.Metadata;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A host directory tree, walked in name order. Modes, numeric owners, modification times, hard
 * links, devices, FIFOs, sockets and {@code user.*} xattrs are carried over, as
 * {@code mkfs.ext4 -d} does; the directory's own metadata becomes the image root's. Access,
 * change and creation times are set to the modification time so builds are reproducible.
 */
public final class DirSource implements Source {
    private static final LinkOption NOFOLLOW = LinkOption.NOFOLLOW_LINKS;
    private final Path root;
    private final OwnerMap owners;

    /** Chooses the owner recorded for a path, given the host's. */
    public interface OwnerMap {
        long[] owner(String imagePath, long hostUid, long hostGid) throws IOException;
    }

    public DirSource(Path root) {
        this(root, (p, u, g) -> new long[] {u, g});
    }

    /**
     * One lstat's worth. Not "unix:*": that also resolves the owner and group names, which reads
     * /etc/passwd and /etc/group (or asks nscd) for every file and cost two thirds of the time
     * of a dir: build of 30,000 small files.
     */
    private static final String ATTRIBUTES = "unix:mode,ino,dev,nlink,uid,gid,size,rdev,lastModifiedTime";

    public DirSource(Path root, OwnerMap owners) {
        this.root = root;
        this.owners = owners;
    }

    @Override
    public String describe() {
        return "dir:" + root;
    }

    @Override
    public long[] estimate() throws IOException {
        long[] acc = new long[2];
        try (var s = Files.walk(root)) {
            s.forEach(p -> {
                acc[1]++;
                try {
                    if (Files.isRegularFile(p, NOFOLLOW)) {
                        acc[0] += Files.size(p);
                    }
                } catch (IOException e) {
                    // counted as empty; the build itself reports unreadable files
                }
            });
        }
        return acc;
    }

    @Override
    public void applyTo(Ext4Writer writer) throws IOException {
        Map<String, String> links = new HashMap<>();
        writer.directory("/", owned("/", metadata(root)));
        walk(root, "", writer, links);
    }

    private void walk(Path dir, String prefix, Ext4Writer w, Map<String, String> links) throws IOException {
        List<Path> children = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            ds.forEach(children::add);
        } catch (IOException e) {
            throw new InvalidSourceException(dir + ": cannot list directory (" + e.getMessage() + ")", e);
        }
        children.sort((a, b) -> a.getFileName().toString().compareTo(b.getFileName().toString()));
        for (Path p : children) {
            String name = prefix + "/" + p.getFileName();
            Map<String, Object> a;
            try {
                a = Files.readAttributes(p, ATTRIBUTES, NOFOLLOW);
            } catch (IOException e) {
                throw new InvalidSourceException(p + ": cannot read attributes (" + e.getMessage() + ")", e);
            }
            int mode = (Integer) a.get("mode");
            int type = mode & 0170000;
            int nlink = (Integer) a.get("nlink");
            if (type != 0040000 && nlink > 1) {
                String key = a.get("dev") + ":" + a.get("ino");
                String first = links.putIfAbsent(key, name);
                if (first != null) {
                    w.hardLink(name, first);
                    continue;
                }
            }
            Metadata md = owned(name, metadata(p, a));
            try {
                switch (type) {
                    case 0040000 -> {
                        w.directory(name, md);
                        walk(p, name, w, links);
                    }
                    case 0100000 -> {
                        long size = (Long) a.get("size");
                        try (InputStream in = Files.newInputStream(p)) {
                            w.file(name, md, size, in);
                        } catch (java.nio.file.AccessDeniedException e) {
                            throw new InvalidSourceException(p + ": permission denied; run as a user who can read it", e);
                        }
                    }
                    case 0120000 -> w.symlink(name, md, Files.readSymbolicLink(p).toString());
                    case 0020000, 0060000 -> {
                        long rdev = (Long) a.get("rdev");
                        int major = (int) (((rdev >>> 8) & 0xFFF) | ((rdev >>> 32) & ~0xFFFL));
                        int minor = (int) ((rdev & 0xFF) | ((rdev >>> 12) & ~0xFFL));
                        if (type == 0020000) {
                            w.charDevice(name, md, major, minor);
                        } else {
                            w.blockDevice(name, md, major, minor);
                        }
                    }
                    case 0010000 -> w.fifo(name, md);
                    case 0140000 -> w.socket(name, md);
                    default -> throw new InvalidSourceException(p + ": unknown file type " + Integer.toOctalString(type));
                }
            } catch (EntryException e) {
                throw new InvalidSourceException(p + ": " + e.getMessage(), e);
            }
        }
    }

    private Metadata owned(String imagePath, Metadata md) throws IOException {
        long[] o = owners.owner(imagePath, md.uid(), md.gid());
        return o[0] == md.uid() && o[1] == md.gid() ? md : md.withOwner(o[0], o[1]);
    }

    private static Metadata metadata(Path p) throws IOException {
        return metadata(p, Files.readAttributes(p, ATTRIBUTES, NOFOLLOW));
    }

    private static Metadata metadata(Path p, Map<String, Object> a) throws IOException {
        // Only the modification time is carried over, as tar does: reading the tree changes its
        // access times and copying it changes its change times, so using them would make two
        // builds of the same tree differ.
        Instant mtime = ((FileTime) a.get("lastModifiedTime")).toInstant();
        Instant atime = mtime;
        Instant ctime = mtime;
        Instant crtime = mtime;
        int mode = (Integer) a.get("mode");
        long uid = ((Integer) a.get("uid")) & 0xFFFFFFFFL;
        long gid = ((Integer) a.get("gid")) & 0xFFFFFFFFL;
        return new Metadata(mode & 07777, uid, gid, atime, mtime, ctime, crtime, userXattrs(p, mode));
    }

    private static Map<String, byte[]> userXattrs(Path p, int mode) {
        int type = mode & 0170000;
        if (type != 0100000 && type != 0040000) {
            // user.* xattrs exist only on files and directories, and the JDK reads them by opening
            // the path: opening a FIFO would block and opening a device could have side effects.
            return Map.of();
        }
        Map<String, byte[]> out = new TreeMap<>();
        try {
            UserDefinedFileAttributeView v = Files.getFileAttributeView(p, UserDefinedFileAttributeView.class, NOFOLLOW);
            if (v == null) {
                return out;
            }
            for (String n : v.list()) {
                ByteBuffer buf = ByteBuffer.allocate(v.size(n));
                v.read(n, buf);
                out.put("user." + n, java.util.Arrays.copyOf(buf.array(), buf.position()));
            }
        } catch (IOException | UnsupportedOperationException e) {
            // The host file system has no xattrs here: nothing to carry over.
        }
        return out;
    }
}
