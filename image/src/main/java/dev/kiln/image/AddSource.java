package dev.kiln.image;

import dev.kiln.ext4.EntryException;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.Metadata;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code --add SRC:DEST[:MODE[:UID:GID]]}: a host file or directory tree placed at DEST. Owners
 * default to 0:0 (the host's are rarely meant for the image); MODE, when given, applies to the
 * file, or to every regular file of a tree; times are the host's modification times.
 */
public final class AddSource implements Source {
    private final Path src;
    private final String dest;
    private final Integer mode;
    private final long uid;
    private final long gid;

    public AddSource(Path src, String dest, Integer mode, long uid, long gid) {
        this.src = src;
        this.dest = dest;
        this.mode = mode;
        this.uid = uid;
        this.gid = gid;
    }

    /** Parses SRC:DEST[:MODE[:UID:GID]]. */
    public static AddSource parse(String spec) {
        String[] p = spec.split(":", -1);
        if (p.length != 2 && p.length != 3 && p.length != 5 || p[0].isEmpty() || p[1].isEmpty()) {
            throw new IllegalArgumentException("--add wants SRC:DEST[:MODE[:UID:GID]], e.g. ./motd:/etc/motd:0644:0:0; got "
                    + spec);
        }
        Path src = Path.of(p[0]);
        if (!Files.exists(src, LinkOption.NOFOLLOW_LINKS)) {
            throw new InvalidSourceException(p[0] + ": no such file or directory; check the SRC of --add " + spec);
        }
        if (!p[1].startsWith("/")) {
            throw new IllegalArgumentException("--add: DEST must be an absolute path in the image: " + p[1]);
        }
        Integer mode = null;
        if (p.length >= 3 && !p[2].isEmpty()) {
            try {
                mode = Integer.parseInt(p[2], 8);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--add: MODE must be octal, e.g. 0755: " + p[2]);
            }
            if (mode < 0 || mode > 07777) {
                throw new IllegalArgumentException("--add: MODE out of range: " + p[2]);
            }
        }
        long uid = 0;
        long gid = 0;
        if (p.length == 5) {
            try {
                uid = Long.parseLong(p[3]);
                gid = Long.parseLong(p[4]);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--add: UID and GID must be numbers: " + p[3] + ":" + p[4]);
            }
        }
        return new AddSource(src, p[1], mode, uid, gid);
    }

    @Override
    public String describe() {
        return "add " + src + " -> " + dest;
    }

    @Override
    public long[] estimate() throws IOException {
        long[] acc = new long[2];
        try (var s = Files.walk(src)) {
            s.forEach(p -> {
                acc[1]++;
                if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                    acc[0] += p.toFile().length();
                }
            });
        }
        return acc;
    }

    @Override
    public void applyTo(Ext4Writer w) throws IOException {
        String target = dest;
        if ((dest.endsWith("/") || w.isDirectory(dest)) && !Files.isDirectory(src)) {
            target = (dest.endsWith("/") ? dest : dest + "/") + src.getFileName();
        }
        try {
            add(src, target, w);
        } catch (EntryException e) {
            throw new InvalidSourceException("--add " + src + ": " + e.getMessage(), e);
        }
    }

    private void add(Path p, String target, Ext4Writer w) throws IOException {
        Map<String, Object> a = Files.readAttributes(p, "unix:mode,lastModifiedTime", LinkOption.NOFOLLOW_LINKS);
        int hostMode = (Integer) a.get("mode");
        Instant t = ((FileTime) a.get("lastModifiedTime")).toInstant();
        int type = hostMode & 0170000;
        int perm = hostMode & 07777;
        Metadata md = new Metadata(type == 0100000 && mode != null ? mode : perm, uid, gid, t, t, t, t, Map.of());
        switch (type) {
            case 0040000 -> {
                w.directory(target, md);
                List<Path> children = new ArrayList<>();
                try (DirectoryStream<Path> ds = Files.newDirectoryStream(p)) {
                    ds.forEach(children::add);
                }
                children.sort((x, y) -> RawPaths.name(x).compareTo(RawPaths.name(y)));
                for (Path c : children) {
                    add(c, (target.endsWith("/") ? target : target + "/") + RawPaths.name(c), w);
                }
            }
            case 0100000 -> {
                DirSource.copyFile(w, target, md, p, Files.size(p));
            }
            case 0120000 -> w.symlink(target, md, RawPaths.string(Files.readSymbolicLink(p)));
            default -> throw new InvalidSourceException(p + ": --add takes files, directories and symlinks only");
        }
    }
}
