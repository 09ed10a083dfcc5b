package dev.kiln.image;

import dev.kiln.ext4.EntryException;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.Metadata;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.Base64;
import java.util.Map;
import java.util.TreeMap;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * A tar archive (plain, gzip, xz, zstd or bzip2; ustar, GNU or PAX) applied entry by entry.
 * Numeric owners are kept; names are never resolved on the host.
 */
public final class TarSource implements Source {
    private final Path file;

    public TarSource(Path file) {
        this.file = file;
    }

    @Override
    public String describe() {
        return "tar:" + file;
    }

    /** Reads the archive's headers once (decompressing it) to count entries and content bytes. */
    @Override
    public long[] estimate() throws IOException {
        try (InputStream raw = Files.newInputStream(file)) {
            return scan(Compression.decompress(raw), describe());
        }
    }

    /** Content bytes and entry count of a (decompressed) tar stream, reading headers only. */
    static long[] scan(InputStream in, String what) throws IOException {
        long bytes = 0;
        long entries = 0;
        try {
            TarArchiveInputStream tar = new TarArchiveInputStream(in);
            TarArchiveEntry e;
            while ((e = tar.getNextEntry()) != null) {
                entries++;
                bytes += e.isSparse() ? e.getRealSize() : e.getSize();
            }
        } catch (IOException | IllegalArgumentException e) {
            if (entries == 0) {
                throw new InvalidSourceException(what + ": not a readable tar archive (" + e.getMessage() + ")", e);
            }
            // a stream without end blocks (umoci): what was read is the estimate
        }
        return new long[] {bytes, entries};
    }

    private final Counting.Progress progress = new Counting.Progress();

    @Override
    public double fraction() {
        return progress.fraction();
    }

    @Override
    public void applyTo(Ext4Writer writer) throws IOException {
        progress.total = Files.size(file);
        try (InputStream raw = new Counting(Files.newInputStream(file), progress);
                InputStream in = Compression.readAhead(Compression.decompress(raw))) {
            apply(in, writer, describe(), null);
        }
    }

    /**
     * Applies the tar stream {@code in} to the writer. When {@code layer} is non-null, OCI
     * whiteouts are interpreted through it instead of being written.
     */
    static void apply(InputStream in, Ext4Writer writer, String what, EntryRules layer) throws IOException {
        PaxRecords.Recorder rec = new PaxRecords.Recorder(in);
        // Names are bytes: read ustar and GNU names one char a byte, PAX paths from the raw records.
        TarArchiveInputStream tar = new TarArchiveInputStream(rec, StandardCharsets.ISO_8859_1.name());
        TarArchiveEntry e = null;
        byte[] drain = new byte[8192];
        while (true) {
            Map<String, byte[]> records;
            try {
                // Finish the previous entry so that only this entry's headers are recorded.
                if (e != null) {
                    while (tar.read(drain) >= 0) {
                        // (usually nothing is left: the writer read the content)
                    }
                }
            } catch (IOException | IllegalArgumentException ex) {
                throw new InvalidSourceException(what + ": " + e.getName() + ": " + ex.getMessage()
                        + "; the archive is truncated or corrupt", ex);
            }
            long entryStart = rec.position();
            try {
                rec.start();
                e = tar.getNextEntry();
                records = PaxRecords.records(rec.stop(), rec.startOffset());
            } catch (IOException | IllegalArgumentException ex) {
                if (rec.atEof() && e != null && rec.position() - entryStart < 512) {
                    // The stream ends where a header would start: some writers (umoci) leave out
                    // the end-of-archive blocks and even the last padding; Go's reader and GNU tar
                    // accept that as the end.
                    break;
                }
                throw new InvalidSourceException(what + ": not a readable tar archive (" + ex.getMessage()
                        + "); check that the file is a tar, optionally gzip/xz/zstd/bzip2-compressed", ex);
            }
            if (e == null) {
                break;
            }
            String name = name(records.get("path"), e.getName());
            String link = name(records.get("linkpath"), e.getLinkName());
            Map<String, byte[]> rawXattrs = new TreeMap<>();
            records.forEach((k, v) -> {
                if (k.startsWith("SCHILY.xattr.")) {
                    rawXattrs.put(k.substring("SCHILY.xattr.".length()), v);
                }
            });
            if (layer != null) {
                try {
                    if (layer.before(name, e.isDirectory(), writer)) {
                        continue;
                    }
                } catch (EntryException ex) {
                    throw new InvalidSourceException(what + ": " + ex.getMessage(), ex);
                }
            }
            Metadata md = metadata(e, rawXattrs);
            try {
                if (e.isDirectory()) {
                    writer.directory(name, md);
                } else if (e.isSymbolicLink()) {
                    writer.symlink(name, md, link);
                } else if (e.isLink()) {
                    writer.hardLink(name, link);
                } else if (e.isCharacterDevice()) {
                    writer.charDevice(name, md, e.getDevMajor(), e.getDevMinor());
                } else if (e.isBlockDevice()) {
                    writer.blockDevice(name, md, e.getDevMajor(), e.getDevMinor());
                } else if (e.isFIFO()) {
                    writer.fifo(name, md);
                } else if (e.isFile() || e.isSparse()) {
                    long size = e.isSparse() ? e.getRealSize() : e.getSize();
                    writer.file(name, md, size, new Guarded(tar, what, name));
                }
                // Other types (volume labels, multi-volume continuations) carry no file.
            } catch (EntryException ex) {
                throw new InvalidSourceException(what + ": " + ex.getMessage(), ex);
            }
        }
        if (layer != null) {
            layer.end(writer);
        }
    }

    /** A name from its raw PAX value when there is one, else from the header read one char a byte. */
    static String name(byte[] pax, String latin1) {
        byte[] b = pax != null ? pax : latin1 == null ? new byte[0] : latin1.getBytes(StandardCharsets.ISO_8859_1);
        return dev.kiln.ext4.Names.decode(b);
    }

    static Metadata metadata(TarArchiveEntry e, Map<String, byte[]> rawXattrs) {
        Instant mtime = instant(e.getLastModifiedTime(), Instant.EPOCH);
        Instant atime = instant(e.getLastAccessTime(), mtime);
        Instant ctime = instant(e.getStatusChangeTime(), mtime);
        Instant crtime = instant(e.getCreationTime(), mtime);
        Map<String, byte[]> xattrs = new TreeMap<>();
        for (Map.Entry<String, String> h : e.getExtraPaxHeaders().entrySet()) {
            String k = h.getKey();
            if (k.startsWith("SCHILY.xattr.")) {
                String n = k.substring("SCHILY.xattr.".length());
                byte[] raw = rawXattrs.get(n);
                xattrs.put(n, raw != null ? raw : h.getValue().getBytes(StandardCharsets.UTF_8));
            } else if (k.startsWith("LIBARCHIVE.xattr.")) {
                String n = java.net.URLDecoder.decode(k.substring("LIBARCHIVE.xattr.".length()), StandardCharsets.UTF_8);
                xattrs.put(n, Base64.getDecoder().decode(h.getValue().trim()));
            }
        }
        return new Metadata(e.getMode() & 07777, e.getLongUserId() & 0xFFFFFFFFL, e.getLongGroupId() & 0xFFFFFFFFL,
                atime, mtime, ctime,
                crtime, xattrs);
    }

    private static Instant instant(FileTime t, Instant fallback) {
        return t == null ? fallback : t.toInstant();
    }

    /** Entry content whose read errors are the archive's fault, not the image's. */
    private static final class Guarded extends java.io.FilterInputStream {
        private final String what;
        private final String name;

        Guarded(InputStream in, String what, String name) {
            super(in);
            this.what = what;
            this.name = name;
        }

        @Override
        public int read(byte[] b, int off, int len) {
            try {
                return in.read(b, off, len);
            } catch (IOException ex) {
                throw new InvalidSourceException(what + ": " + name + ": " + ex.getMessage()
                        + "; the archive is truncated or corrupt", ex);
            }
        }

        @Override
        public int read() {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
        }

        @Override
        public void close() {
            // The tar stream stays open for the next entry.
        }
    }

    /** Rules a layer applies around its entries (OCI whiteouts). */
    interface EntryRules {
        /** Called before each entry; returns true when the entry was consumed (a whiteout). */
        boolean before(String name, boolean directory, Ext4Writer writer);

        /** Called after the last entry. */
        void end(Ext4Writer writer);
    }
}
