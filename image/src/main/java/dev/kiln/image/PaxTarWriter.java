package dev.kiln.image;

import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

/**
 * Writes PAX tar archives whose extended headers are binary-safe.
 *
 * <p>commons-compress writes the ustar headers and the data; each entry's PAX header (path,
 * link target, numeric owners, nanosecond times, {@code SCHILY.xattr.*}) is written here byte
 * for byte, because commons-compress would encode xattr values as UTF-8 text. The ustar header
 * under it carries only values that need no PAX record of their own, so every entry has exactly
 * one extended header.
 */
public final class PaxTarWriter implements Closeable {
    private final TarArchiveOutputStream tar;
    private long counter;

    public PaxTarWriter(OutputStream out) {
        this.tar = new TarArchiveOutputStream(out, StandardCharsets.UTF_8.name());
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_ERROR);
        tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_STAR);
    }

    /** Entry kinds, as tar type flags. */
    public enum Kind {
        DIRECTORY(TarConstants.LF_DIR, 0040000), FILE(TarConstants.LF_NORMAL, 0100000),
        SYMLINK(TarConstants.LF_SYMLINK, 0120000), HARDLINK(TarConstants.LF_LINK, 0100000),
        CHAR_DEVICE(TarConstants.LF_CHR, 0020000), BLOCK_DEVICE(TarConstants.LF_BLK, 0060000),
        FIFO(TarConstants.LF_FIFO, 0010000);

        final byte flag;
        final int typeBits;

        Kind(byte flag, int typeBits) {
            this.flag = flag;
            this.typeBits = typeBits;
        }
    }

    /** One entry; {@code link} is the symlink target or the hard link's first path. */
    public record Entry(String path, Kind kind, int mode, long uid, long gid, Instant mtime, Instant atime,
            Instant ctime, Instant crtime, long size, String link, int major, int minor, Map<String, byte[]> xattrs) {}

    public void add(Entry e, InputStream content) throws IOException {
        String name = e.path().equals("/") ? "./" : "." + e.path() + (e.kind() == Kind.DIRECTORY ? "/" : "");
        Map<String, byte[]> pax = new LinkedHashMap<>();
        String link = e.link() == null ? null : e.kind() == Kind.HARDLINK ? "." + e.link() : e.link();
        // Names are bytes, written as they are, as GNU tar writes them (it warns about "hdrcharset").
        pax.put("path", dev.kiln.ext4.Names.encode(name));
        if (link != null) {
            pax.put("linkpath", dev.kiln.ext4.Names.encode(link));
        }
        pax.put("uid", ascii(Long.toString(e.uid())));
        pax.put("gid", ascii(Long.toString(e.gid())));
        pax.put("mtime", time(e.mtime()));
        pax.put("atime", time(e.atime()));
        pax.put("ctime", time(e.ctime()));
        // No creation time: the only keyword for it (LIBARCHIVE.creationtime) makes GNU tar warn
        // once per entry, and no extractor sets it anyway.
        if (e.kind() == Kind.FILE) {
            pax.put("size", ascii(Long.toString(e.size())));
        }
        for (Map.Entry<String, byte[]> x : e.xattrs().entrySet()) {
            pax.put("SCHILY.xattr." + x.getKey(), x.getValue());
        }
        byte[] records = encode(pax);
        TarArchiveEntry h = new TarArchiveEntry("./PaxHeaders/" + (counter++), TarConstants.LF_PAX_EXTENDED_HEADER_LC);
        h.setSize(records.length);
        h.setModTime(0);
        tar.putArchiveEntry(h);
        tar.write(records);
        tar.closeArchiveEntry();

        // The ustar header: a short stand-in name (the PAX path wins), no values that need PAX.
        String stand = "./kiln-" + (counter - 1) + (e.kind() == Kind.DIRECTORY ? "/" : "");
        TarArchiveEntry t = new TarArchiveEntry(stand, e.kind().flag);
        t.setMode(e.kind().typeBits | (e.mode() & 07777));
        t.setUserId(0);
        t.setGroupId(0);
        t.setModTime(0);
        if (e.link() != null) {
            t.setLinkName("kiln-link");
        }
        if (e.kind() == Kind.CHAR_DEVICE || e.kind() == Kind.BLOCK_DEVICE) {
            t.setDevMajor(e.major());
            t.setDevMinor(e.minor());
        }
        if (e.kind() == Kind.FILE) {
            t.setSize(e.size());
        }
        tar.putArchiveEntry(t);
        if (e.kind() == Kind.FILE && content != null) {
            long copied = content.transferTo(tar);
            if (copied != e.size()) {
                throw new IOException(e.path() + ": wrote " + copied + " bytes, expected " + e.size());
            }
        }
        tar.closeArchiveEntry();
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] time(Instant t) {
        return ascii(BigDecimal.valueOf(t.getEpochSecond()).add(BigDecimal.valueOf(t.getNano(), 9)).toPlainString());
    }

    /** PAX records: "LEN key=value\n", where LEN counts the whole record including itself. */
    static byte[] encode(Map<String, byte[]> records) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Map.Entry<String, byte[]> r : records.entrySet()) {
            byte[] key = r.getKey().getBytes(StandardCharsets.UTF_8);
            int body = 1 + key.length + 1 + r.getValue().length + 1;
            int len = body + Integer.toString(body).length();
            if (Integer.toString(len).length() != Integer.toString(body).length()) {
                len++;
            }
            out.writeBytes(ascii(Integer.toString(len) + " "));
            out.writeBytes(key);
            out.write('=');
            out.writeBytes(r.getValue());
            out.write('\n');
        }
        return out.toByteArray();
    }

    public void finish() throws IOException {
        tar.finish();
    }

    @Override
    public void close() throws IOException {
        tar.close();
    }
}
