package dev.kiln.image;

import dev.kiln.ext4.TestTree;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorOutputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorOutputStream;
import org.apache.commons.compress.compressors.xz.XZCompressorOutputStream;
import org.apache.commons.compress.compressors.zstandard.ZstdCompressorOutputStream;

/** Builds tar archives of {@link TestTree}s in code, in each header format and compression. */
final class TarFixtures {
    enum Format { USTAR, GNU, PAX }

    enum Codec { NONE, GZIP, XZ, ZSTD, BZIP2 }

    private TarFixtures() {}

    static Path write(TestTree tree, Path out, Format format, Codec codec) throws IOException {
        try (OutputStream raw = Files.newOutputStream(out); OutputStream c = compress(raw, codec);
                TarArchiveOutputStream tar = new TarArchiveOutputStream(c, StandardCharsets.UTF_8.name())) {
            switch (format) {
                case USTAR -> {
                    tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_ERROR);
                    tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_ERROR);
                }
                case GNU -> {
                    tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_GNU);
                    tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_STAR);
                }
                case PAX -> {
                    tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_TRUNCATE);
                    tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_STAR);
                }
            }
            java.util.List<TestTree.Node> ordered = new java.util.ArrayList<>();
            // Hard links after the files they point to.
            for (TestTree.Node n : tree.nodes().values()) {
                if (n.linkGroup() == null || n.linkGroup().equals(n.path())) {
                    ordered.add(n);
                }
            }
            for (TestTree.Node n : tree.nodes().values()) {
                if (n.linkGroup() != null && !n.linkGroup().equals(n.path())) {
                    ordered.add(n);
                }
            }
            for (TestTree.Node n : ordered) {
                if (n.kind() == TestTree.Kind.SOCK) {
                    continue; // tar cannot carry sockets
                }
                String name = n.path().equals("/") ? "./" : "." + n.path() + (n.kind() == TestTree.Kind.DIR ? "/" : "");
                boolean link = n.linkGroup() != null && !n.linkGroup().equals(n.path());
                TarArchiveEntry e;
                if (link) {
                    e = new TarArchiveEntry(name, TarConstants.LF_LINK);
                    e.setLinkName("." + n.linkGroup());
                } else {
                    e = switch (n.kind()) {
                        case DIR -> new TarArchiveEntry(name, TarConstants.LF_DIR);
                        case FILE -> new TarArchiveEntry(name, TarConstants.LF_NORMAL);
                        case SYMLINK -> {
                            TarArchiveEntry s = new TarArchiveEntry(name, TarConstants.LF_SYMLINK);
                            s.setLinkName(n.target());
                            yield s;
                        }
                        case CHR -> new TarArchiveEntry(name, TarConstants.LF_CHR);
                        case BLK -> new TarArchiveEntry(name, TarConstants.LF_BLK);
                        case FIFO -> new TarArchiveEntry(name, TarConstants.LF_FIFO);
                        default -> throw new IllegalStateException();
                    };
                }
                int typeBits = switch (n.kind()) {
                    case DIR -> 0040000;
                    case SYMLINK -> 0120000;
                    case CHR -> 0020000;
                    case BLK -> 0060000;
                    case FIFO -> 0010000;
                    default -> 0100000;
                };
                e.setMode(typeBits | n.md().mode());
                e.setUserId(n.md().uid());
                e.setGroupId(n.md().gid());
                if (n.kind() == TestTree.Kind.CHR || n.kind() == TestTree.Kind.BLK) {
                    e.setDevMajor(n.major());
                    e.setDevMinor(n.minor());
                }
                if (format == Format.PAX) {
                    // One hand-written PAX header per entry (path, link target, owners, times with
                    // nanoseconds, binary xattrs); the ustar header under it only needs to be valid.
                    writeRawPax(tar, name, n, link);
                    e.setModTime(0);
                    e.setUserId(0);
                    e.setGroupId(0);
                    if (e.getLinkName() != null && e.getLinkName().length() > 99) {
                        e.setLinkName(e.getLinkName().substring(0, 99));
                    }
                } else {
                    e.setModTime(n.md().mtime().getEpochSecond() * 1000);
                }
                if (n.kind() == TestTree.Kind.FILE && !link) {
                    e.setSize(n.size());
                }
                if (format == Format.PAX && name.length() > 99) {
                    // The PAX path record carries the real name; this one only has to fit.
                    e.setName("./long-" + Integer.toHexString(name.hashCode()) + (name.endsWith("/") ? "/" : ""));
                }
                tar.putArchiveEntry(e);
                if (n.kind() == TestTree.Kind.FILE && !link) {
                    TestTree.content(n).transferTo(tar);
                }
                tar.closeArchiveEntry();
            }
        }
        return out;
    }

    /** A PAX 'x' header written byte for byte, so binary xattr values survive. */
    private static void writeRawPax(TarArchiveOutputStream tar, String name, TestTree.Node n, boolean link)
            throws IOException {
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        Map<String, byte[]> records = new java.util.LinkedHashMap<>();
        records.put("path", name.getBytes(StandardCharsets.UTF_8));
        if (link) {
            records.put("linkpath", ("." + n.linkGroup()).getBytes(StandardCharsets.UTF_8));
        } else if (n.target() != null) {
            records.put("linkpath", n.target().getBytes(StandardCharsets.UTF_8));
        }
        records.put("uid", String.valueOf(n.md().uid()).getBytes(StandardCharsets.US_ASCII));
        records.put("gid", String.valueOf(n.md().gid()).getBytes(StandardCharsets.US_ASCII));
        records.put("mtime", time(n.md().mtime()));
        records.put("atime", time(n.md().atime()));
        records.put("ctime", time(n.md().ctime()));
        records.put("LIBARCHIVE.creationtime", time(n.md().crtime()));
        if (!link) {
            for (Map.Entry<String, byte[]> x : n.md().xattrs().entrySet()) {
                records.put("SCHILY.xattr." + x.getKey(), x.getValue());
            }
        }
        data.writeBytes(PaxTarWriter.encode(records));
        TarArchiveEntry pax = new TarArchiveEntry("./PaxHeaders/" + Math.abs(name.hashCode()),
                TarConstants.LF_PAX_EXTENDED_HEADER_LC);
        pax.setSize(data.size());
        pax.setModTime(0);
        tar.putArchiveEntry(pax);
        tar.write(data.toByteArray());
        tar.closeArchiveEntry();
    }

    private static byte[] time(java.time.Instant t) {
        return java.math.BigDecimal.valueOf(t.getEpochSecond()).add(java.math.BigDecimal.valueOf(t.getNano(), 9))
                .toPlainString().getBytes(StandardCharsets.US_ASCII);
    }

    private static OutputStream compress(OutputStream raw, Codec codec) throws IOException {
        return switch (codec) {
            case NONE -> raw;
            case GZIP -> new GzipCompressorOutputStream(raw);
            case XZ -> new XZCompressorOutputStream(raw);
            case ZSTD -> new ZstdCompressorOutputStream(raw);
            case BZIP2 -> new BZip2CompressorOutputStream(raw, 1);
        };
    }
}
