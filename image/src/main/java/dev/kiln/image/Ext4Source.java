package dev.kiln.image;

import dev.kiln.ext4.EntryException;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.FileStat;
import dev.kiln.ext4.Metadata;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * An existing ext2/3/4 image as a base: every path with all its metadata (four times, owners,
 * modes, xattrs), hard links kept as hard links.
 */
public final class Ext4Source implements Source {
    private final Path image;

    public Ext4Source(Path image) {
        this.image = image;
    }

    @Override
    public String describe() {
        return "ext4:" + image;
    }

    @Override
    public long[] estimate() throws IOException {
        try (Ext4Reader r = Ext4Reader.open(image)) {
            var sb = r.superblock();
            return new long[] {(sb.blocksCount() - sb.freeBlocksCount()) * r.blockSize(),
                sb.inodesCount() - sb.freeInodesCount()};
        }
    }

    @Override
    public void applyTo(Ext4Writer w) throws IOException {
        try (Ext4Reader r = Ext4Reader.open(image)) {
            Map<Long, String> firstPath = new HashMap<>();
            r.walk((p, st) -> {
                try {
                    apply(r, w, p, st, firstPath);
                } catch (EntryException e) {
                    throw new InvalidSourceException(describe() + ": " + e.getMessage(), e);
                }
            });
        } catch (dev.kiln.ext4.CorruptImageException e) {
            throw new InvalidSourceException(describe() + ": " + e.getMessage(), e);
        }
    }

    private static void apply(Ext4Reader r, Ext4Writer w, String p, FileStat st, Map<Long, String> firstPath)
            throws IOException {
        if (!st.isDirectory() && st.links() > 1) {
            String first = firstPath.putIfAbsent(st.ino(), p);
            if (first != null) {
                w.hardLink(p, first);
                return;
            }
        }
        Metadata md = new Metadata(st.mode(), st.uid(), st.gid(), st.atime(), st.mtime(), st.ctime(), st.crtime(),
                r.xattrs(st.ino()));
        switch (st.type()) {
            case DIRECTORY -> w.directory(p, md);
            case REGULAR -> {
                // Fewer blocks than the size needs: it has holes (loading its extents twice for
                // every other file would be wasted).
                long[] data = st.blocks512() * 512 < st.size() ? r.dataRegions(st.ino()) : null;
                try (InputStream in = r.open(st.ino())) {
                    if (data != null && RegionBytes.total(data, st.size()) < st.size()) {
                        // Holes in the image read stay holes, unread (the reader's skip only moves).
                        w.file(p, md, st.size(), data, new RegionBytes(in, data, st.size(), n -> {
                            if (in.skip(n) != n) {
                                throw new java.io.EOFException(p + ": ends inside its own size");
                            }
                        }));
                    } else {
                        w.file(p, md, st.size(), in);
                    }
                }
            }
            case SYMLINK -> w.symlink(p, md, r.readLink(st.ino()));
            case CHAR_DEVICE -> w.charDevice(p, md, st.major(), st.minor());
            case BLOCK_DEVICE -> w.blockDevice(p, md, st.major(), st.minor());
            case FIFO -> w.fifo(p, md);
            case SOCKET -> w.socket(p, md);
            default -> throw new InvalidSourceException(p + ": inode " + st.ino() + " has an unknown file type");
        }
    }
}
