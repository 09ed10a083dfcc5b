package dev.kiln.image;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.FileStat;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.HashMap;
import java.util.Map;

/**
 * An image's tree as a PAX tar: numeric owners, nanosecond times, xattrs, hard links and device
 * nodes, readable by {@code tar:} sources without root. Sockets cannot be represented in tar
 * and are counted as skipped.
 */
public final class TarExport {
    private TarExport() {}

    /** Writes the archive and returns the number of sockets skipped. */
    public static int write(Ext4Reader r, OutputStream out) throws IOException {
        int[] skipped = {0};
        Map<Long, String> firstPath = new HashMap<>();
        try (PaxTarWriter tar = new PaxTarWriter(out)) {
            r.walk((p, st) -> {
                if (st.type() == dev.kiln.ext4.FileType.SOCKET) {
                    skipped[0]++;
                    return;
                }
                String link = null;
                PaxTarWriter.Kind kind = kind(st);
                if (!st.isDirectory() && st.links() > 1) {
                    String first = firstPath.putIfAbsent(st.ino(), p);
                    if (first != null) {
                        kind = PaxTarWriter.Kind.HARDLINK;
                        link = first;
                    }
                }
                if (st.isSymlink()) {
                    link = r.readLink(st.ino());
                }
                PaxTarWriter.Entry e = new PaxTarWriter.Entry(p, kind, st.mode(), st.uid(), st.gid(), st.mtime(),
                        st.atime(), st.ctime(), st.crtime(), kind == PaxTarWriter.Kind.FILE ? st.size() : 0, link, st.major(),
                        st.minor(), kind == PaxTarWriter.Kind.HARDLINK ? Map.of() : r.xattrs(st.ino()));
                if (kind == PaxTarWriter.Kind.FILE) {
                    try (InputStream in = r.open(st.ino())) {
                        tar.add(e, in);
                    }
                } else {
                    tar.add(e, null);
                }
            });
            tar.finish();
        }
        return skipped[0];
    }

    private static PaxTarWriter.Kind kind(FileStat st) {
        return switch (st.type()) {
            case DIRECTORY -> PaxTarWriter.Kind.DIRECTORY;
            case SYMLINK -> PaxTarWriter.Kind.SYMLINK;
            case CHAR_DEVICE -> PaxTarWriter.Kind.CHAR_DEVICE;
            case BLOCK_DEVICE -> PaxTarWriter.Kind.BLOCK_DEVICE;
            case FIFO -> PaxTarWriter.Kind.FIFO;
            default -> PaxTarWriter.Kind.FILE;
        };
    }
}
