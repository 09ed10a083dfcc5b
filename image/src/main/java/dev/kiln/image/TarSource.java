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
import java.util.List;
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
            // (TarStream: commons-compress alone skips content through a new 8 KiB array per 8 KiB)
            TarArchiveInputStream tar = TarStream.headers(in);
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
        try (InputStream raw = new java.io.BufferedInputStream(
                new Counting(Files.newInputStream(file), progress, progress.total), 1 << 16);
                InputStream plain = Compression.decompress(raw);
                InputStream in = readAhead(progress.total, plain != raw) ? Compression.readAhead(plain) : plain) {
            apply(in, writer, describe(), null, progress.total);
        }
    }

    /**
     * Whether an archive file of {@code bytes} is read (and inflated) on a thread of its own:
     * from 16 MiB, unless it is not compressed and gets a parser thread, which then reads it as
     * well. The third thread only cost CPU there (Linux tree: 3.4 against 3.0 CPU-s, 2.48
     * against 2.40 s), and below 16 MiB more than it saved (an Alpine-sized 2 MB .tar.gz: 284
     * against 275 ms; 13 MB: 444 against 434 ms); the 51 MB hard-link archive, parsed on the
     * writer's thread, went 49 ms faster with it.
     */
    static boolean readAhead(long bytes, boolean compressed) {
        return bytes >= 16L << 20 && (compressed || bytes < parserThreadFrom);
    }

    /** What the entry is, for the writer; a CHUNK is the next piece of the large file before it. */
    private enum Kind { DIRECTORY, SYMLINK, HARD_LINK, CHAR_DEVICE, BLOCK_DEVICE, FIFO, FILE, OTHER, CHUNK }

    /**
     * One parsed entry. Content sits in the read-ahead ring: {@code length} bytes at
     * {@code offset}, and {@code held} ring bytes go back once the writer is done with them. A file
     * over 1 MiB has none itself (offset -1); its content follows as CHUNK entries of up to 1 MiB.
     */
    private record Entry(Kind kind, String name, String link, Metadata md, long size, int major, int minor,
            int offset, int length, int held, Throwable error, long[] regions) {
        static final Entry END = failed(null);

        static Entry failed(Throwable e) {
            return new Entry(Kind.OTHER, null, null, null, 0, 0, 0, -1, 0, 0, e, null);
        }
    }

    /** The writer's side of the hand-off: the next entry, its reading thread's failure thrown. */
    private static final class Entries {
        private final ReadAhead.Handoff<Entry> from;
        private final String what;

        Entries(ReadAhead.Handoff<Entry> from, String what) {
            this.from = from;
            this.what = what;
        }

        Entry next() throws IOException {
            Entry e = from.next(what);
            if (e.error() != null) {
                throw ReadAhead.rethrown(e.error(), what);
            }
            return e;
        }
    }

    /** A large file's content, read from the CHUNK entries that follow it, freeing each when read. */
    private static final class Chunks extends InputStream {
        private final Entries entries;
        private final ReadAhead.Ring ring;
        private long remaining;
        private Entry chunk;
        private int pos;

        Chunks(Entries entries, ReadAhead.Ring ring, long size) {
            this.entries = entries;
            this.ring = ring;
            this.remaining = size;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) {
                return 0;
            }
            while (chunk == null || pos == chunk.length()) {
                done();
                if (remaining == 0) {
                    return -1;
                }
                chunk = entries.next();
                if (chunk.kind() != Kind.CHUNK) {
                    throw new IllegalStateException("expected the next piece of a file, got " + chunk.kind());
                }
                pos = 0;
            }
            int n = Math.min(len, chunk.length() - pos);
            System.arraycopy(ring.buf, chunk.offset() + pos, b, off, n);
            pos += n;
            remaining -= n;
            return n;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
        }

        /** Frees the chunk being read. */
        void done() {
            if (chunk != null) {
                ring.release(chunk.held());
                chunk = null;
            }
        }
    }

    /**
     * Archives below this many bytes are parsed on the writer's thread: on two cores a second
     * thread gained nothing for an Alpine-sized base (the compiler thread has the other core
     * while the JVM warms up) and cost the ring's memory and ~40 ms; the Linux tree's 1.3 GB went
     * 19 % faster with it.
     */
    static long parserThreadFrom = 64L << 20;

    /**
     * Applies the tar stream {@code in}, an archive of about {@code bytes} (0 when unknown), to
     * the writer. When {@code layer} is non-null, OCI whiteouts are interpreted through it
     * instead of being written.
     *
     * <p>From {@link #parserThreadFrom} bytes the archive is parsed on a second thread
     * (commons-compress's header and PAX parsing was half of a Debian base's build on the
     * writer's thread), which reads files into the read-ahead ring, those over 1 MiB in 1 MiB
     * pieces, and hands the entries over in batches.
     */
    static void apply(InputStream in, Ext4Writer writer, String what, EntryRules layer, long bytes) throws IOException {
        if (bytes < parserThreadFrom) {
            try {
                parse(in, what, (kind, name, link, md, size, major, minor, content, regions) ->
                        write(kind, name, link, md, size, major, minor, content, regions, writer, what, layer),
                        new java.util.concurrent.atomic.AtomicBoolean());
            } catch (InterruptedException e) {
                // (the inline sink does not wait)
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while reading " + what);
            }
            if (layer != null) {
                layer.end(writer);
            }
            return;
        }
        ReadAhead.Ring ring = new ReadAhead.Ring();
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        ReadAhead.Handoff<Entry> out = new ReadAhead.Handoff<>(stop, Entry[]::new);
        Thread parser = ReadAhead.start("kiln-tar-parse", out, () -> parse(in, what, handingOff(out, ring, stop, what), stop),
                Entry::failed, Entry.END);
        try {
            Entries entries = new Entries(out, what);
            for (Entry e = entries.next(); e != Entry.END; e = entries.next()) {
                try {
                    written(e, writer, what, layer, ring, entries);
                } finally {
                    ring.release(e.held());
                }
            }
        } finally {
            stop.set(true);
            out.clear();
            ring.abandon();
            parser.interrupt();
            // The caller closes the stream after this returns: the parser must be done with it.
            try {
                parser.join(30_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (layer != null) {
            layer.end(writer);
        }
    }

    /** Writes a handed-over entry; its content is in the ring, or follows in chunks. */
    private static void written(Entry e, Ext4Writer writer, String what, EntryRules layer, ReadAhead.Ring ring,
            Entries entries) throws IOException {
        if (e.kind() == Kind.CHUNK) {
            throw new IllegalStateException(e.name() + ": a piece of a file without its file");
        }
        long stored = e.regions() == null ? e.size() : RegionBytes.total(e.regions(), e.size());
        Chunks chunks = e.kind() == Kind.FILE && e.offset() < 0 ? new Chunks(entries, ring, stored) : null;
        InputStream content = chunks != null ? chunks
                : e.kind() == Kind.FILE ? new ReadAhead.Held(ring.buf, e.offset(), e.length()) : null;
        try {
            if (!write(e.kind(), e.name(), e.link(), e.md(), e.size(), e.major(), e.minor(), content, e.regions(), writer,
                    what, layer) && chunks != null) {
                // Consumed by the layer's rules (a whiteout is empty, but whatever it holds goes).
                chunks.transferTo(java.io.OutputStream.nullOutputStream());
            }
        } finally {
            if (chunks != null) {
                chunks.done();
            }
        }
    }

    /** Writes one entry; false when the layer's rules consumed it instead (a whiteout). */
    private static boolean write(Kind kind, String name, String link, Metadata md, long size, int major, int minor,
            InputStream content, long[] regions, Ext4Writer writer, String what, EntryRules layer) throws IOException {
        try {
            if (layer != null && layer.before(name, kind == Kind.DIRECTORY, writer)) {
                return false;
            }
            switch (kind) {
                case DIRECTORY -> writer.directory(name, md);
                case SYMLINK -> writer.symlink(name, md, link);
                case HARD_LINK -> writer.hardLink(name, link);
                case CHAR_DEVICE -> writer.charDevice(name, md, major, minor);
                case BLOCK_DEVICE -> writer.blockDevice(name, md, major, minor);
                case FIFO -> writer.fifo(name, md);
                case FILE -> {
                    if (regions != null) {
                        writer.file(name, md, size, regions, content);
                    } else if (content instanceof ReadAhead.Held held && held.available() == size) {
                        writer.file(name, md, held.remaining()); // read ahead into the ring: written from there
                    } else {
                        writer.file(name, md, size, content);
                    }
                }
                case OTHER, CHUNK -> {
                    // Volume labels, multi-volume continuations: no file.
                }
            }
            return true;
        } catch (EntryException ex) {
            throw new InvalidSourceException(what + ": " + ex.getMessage(), ex);
        }
    }

    /**
     * Takes the parsed entries in order; a file's content is read from {@code content} (exactly
     * {@code size} bytes, or none). A sparse file comes with its data {@code regions} ({@link
     * Ext4Writer#file(String, Metadata, long, long[], InputStream)}) and {@code content} holds only
     * their bytes; otherwise {@code regions} is null.
     */
    private interface Sink {
        void accept(Kind kind, String name, String link, Metadata md, long size, int major, int minor,
                InputStream content, long[] regions) throws IOException, InterruptedException;
    }

    /**
     * The parser thread's sink: reads a file's content into the ring (a file over 1 MiB in
     * CHUNK pieces, so the parser never waits for the writer to copy a file: a third of a Debian
     * base's bytes are in 20 files) and hands the entries over.
     */
    private static Sink handingOff(ReadAhead.Handoff<Entry> out, ReadAhead.Ring ring,
            java.util.concurrent.atomic.AtomicBoolean stop, String what) {
        return (kind, name, link, md, size, major, minor, content, regions) -> {
            // A sparse file hands over only its data; the writer puts the holes back.
            long stored = regions == null ? size : RegionBytes.total(regions, size);
            if (kind != Kind.FILE) {
                out.add(new Entry(kind, name, link, md, 0, major, minor, -1, 0, 0, null, null));
            } else if (stored <= ReadAhead.FILE) {
                int[] r = ring.reserve((int) stored, out);
                readFully(content, ring.buf, r[0], (int) stored, what, name);
                out.add(new Entry(kind, name, link, md, size, 0, 0, r[0], (int) stored, r[1], null, regions));
            } else {
                out.add(new Entry(kind, name, link, md, size, 0, 0, -1, 0, 0, null, regions));
                for (long left = stored; left > 0 && !stop.get(); ) {
                    int piece = (int) Math.min(ReadAhead.FILE, left);
                    int[] r = ring.reserve(piece, out);
                    readFully(content, ring.buf, r[0], piece, what, name);
                    out.add(new Entry(Kind.CHUNK, name, null, null, piece, 0, 0, r[0], piece, r[1], null, null));
                    left -= piece;
                }
            }
        };
    }

    /** Parses the archive, giving its entries in order to {@code sink}. */
    private static void parse(InputStream in, String what, Sink sink,
            java.util.concurrent.atomic.AtomicBoolean stop) throws IOException, InterruptedException {
        Parser p = new Parser(in, what, sink);
        while (!stop.get() && p.next()) {
            // One entry a call: the loop's body is a method the JIT compiles after a few hundred
            // entries. As one long-running loop it stayed interpreted until an on-stack
            // replacement, which 30,000 entries never reached (30-40 ms of interpretation on the
            // flat and hard-link corpora).
        }
    }

    /** The archive's entries, one {@link #next()} at a time. */
    private static final class Parser {
        private final String what;
        private final Sink sink;
        private final PaxRecords.Recorder rec;
        private final TarArchiveInputStream tar;
        private final byte[] drain = new byte[8192];
        private TarArchiveEntry e;
        private String previous;

        Parser(InputStream in, String what, Sink sink) {
            this.what = what;
            this.sink = sink;
            this.rec = new PaxRecords.Recorder(in);
            // Names are bytes: read ustar and GNU names one char a byte, PAX paths from the raw records.
            this.tar = new TarStream(rec, StandardCharsets.ISO_8859_1.name());
        }

        /** Hands the next entry to the sink; false at the archive's end. */
        boolean next() throws IOException, InterruptedException {
            Map<String, byte[]> records;
            try {
                // Finish the previous entry so that only this entry's headers are recorded.
                if (e != null) {
                    // Skipped, not read: a sparse file's trailing hole costs nothing that way.
                    while (tar.skip(Long.MAX_VALUE) > 0) {
                        // (usually nothing is left: the content was read)
                    }
                    while (tar.read(drain) >= 0) {
                        // (nothing, unless skipping stopped early)
                    }
                }
            } catch (IOException | IllegalArgumentException ex) {
                throw new InvalidSourceException(what + ": " + previous + ": " + ex.getMessage()
                        + "; the archive is truncated or corrupt", ex);
            }
            long entryStart = rec.position();
            try {
                rec.start();
                e = tar.getNextEntry();
                records = rec.stop();
            } catch (IOException | IllegalArgumentException ex) {
                if (rec.atEof() && e != null && rec.position() - entryStart < 512) {
                    // The stream ends where a header would start: some writers (umoci) leave out
                    // the end-of-archive blocks and even the last padding; Go's reader and GNU tar
                    // accept that as the end.
                    return false;
                }
                throw new InvalidSourceException(what + ": not a readable tar archive (" + ex.getMessage()
                        + "); check that the file is a tar, optionally gzip/xz/zstd/bzip2-compressed", ex);
            }
            if (e == null) {
                return false;
            }
            String name = name(records.get("path"), e.getName());
            previous = e.getName();
            String link = name(records.get("linkpath"), e.getLinkName());
            Map<String, byte[]> rawXattrs = records.isEmpty() ? Map.of() : new TreeMap<>();
            for (Map.Entry<String, byte[]> r : records.entrySet()) {
                if (r.getKey().startsWith("SCHILY.xattr.")) {
                    rawXattrs.put(r.getKey().substring("SCHILY.xattr.".length()), r.getValue());
                }
            }
            Metadata md = metadata(e, rawXattrs);
            Kind kind = e.isDirectory() ? Kind.DIRECTORY : e.isSymbolicLink() ? Kind.SYMLINK : e.isLink() ? Kind.HARD_LINK
                    : e.isCharacterDevice() ? Kind.CHAR_DEVICE : e.isBlockDevice() ? Kind.BLOCK_DEVICE
                    : e.isFIFO() ? Kind.FIFO : e.isFile() || e.isSparse() ? Kind.FILE : Kind.OTHER;
            int major = kind == Kind.CHAR_DEVICE || kind == Kind.BLOCK_DEVICE ? e.getDevMajor() : 0;
            int minor = kind == Kind.CHAR_DEVICE || kind == Kind.BLOCK_DEVICE ? e.getDevMinor() : 0;
            long size = kind != Kind.FILE ? 0 : e.isSparse() ? e.getRealSize() : e.getSize();
            Guarded content = kind == Kind.FILE ? new Guarded(tar, what, name) : null;
            long[] regions = kind == Kind.FILE && e.isSparse() ? regions(e, what) : null;
            sink.accept(kind, name, link, md, size, major, minor,
                    regions == null ? content : new RegionBytes(content, regions, size, content::skipExactly), regions);
            return true;
        }
    }

    /**
     * A sparse entry's data regions from its sparse map (GNU's old format, PAX 0.0/0.1/1.0): the
     * holes between them are skipped in the archive's stream (commons-compress makes a hole's
     * zeros one byte at a time, 15 s for a 4 GiB disk image) and left as holes by the writer.
     */
    private static long[] regions(TarArchiveEntry e, String what) {
        List<org.apache.commons.compress.archivers.tar.TarArchiveStructSparse> map;
        try {
            map = e.getOrderedSparseHeaders();
        } catch (IOException ex) {
            throw new InvalidSourceException(what + ": " + e.getName() + ": " + ex.getMessage()
                    + "; the archive's sparse map is corrupt", ex);
        }
        long[] out = new long[map.size() * 2];
        int n = 0;
        for (var h : map) {
            if (h.getNumbytes() > 0) {
                out[n++] = h.getOffset();
                out[n++] = h.getNumbytes();
            }
        }
        return java.util.Arrays.copyOf(out, n);
    }

    /** Reads an entry's bytes; the archive's read errors come as {@link Guarded}'s. */
    private static void readFully(InputStream in, byte[] b, int off, int len, String what, String name) throws IOException {
        int done = 0;
        while (done < len) {
            int n = in.read(b, off + done, len - done);
            if (n < 0) {
                throw new InvalidSourceException(what + ": " + name + ": the archive ends after " + done + " of the entry's "
                        + len + " bytes; the archive is truncated or corrupt");
            }
            done += n;
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
        Map<String, String> extra = e.getExtraPaxHeaders();
        Map<String, byte[]> xattrs = extra.isEmpty() ? Map.of() : new TreeMap<>();
        for (Map.Entry<String, String> h : extra.entrySet()) {
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

        /** Skips exactly {@code n} bytes of the entry (a sparse entry's hole: no bytes are made). */
        void skipExactly(long n) {
            try {
                long left = n;
                while (left > 0) {
                    long k = in.skip(left);
                    if (k <= 0) {
                        if (in.read() < 0) {
                            throw new java.io.EOFException("the entry ends " + left + " bytes early");
                        }
                        k = 1;
                    }
                    left -= k;
                }
            } catch (IOException ex) {
                throw new InvalidSourceException(what + ": " + name + ": " + ex.getMessage()
                        + "; the archive is truncated or corrupt", ex);
            }
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
