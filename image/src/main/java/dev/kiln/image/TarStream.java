package dev.kiln.image;

import java.io.IOException;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * commons-compress's tar reader, ending each entry without a fresh buffer.
 *
 * <p>Moving to the next entry, {@link TarArchiveInputStream} (1.28) skips what is left of the
 * entry and then its record padding with commons-io's {@code IOUtils.skip}, to which it hands
 * a supplier that allocates a new 8 KiB array per call: two arrays per entry, two thirds of all
 * that a build of 32,000 small entries allocated (48 young collections). Here the entry is
 * read to its end and the padding up to the next record boundary (records start every
 * {@link #getRecordSize()} bytes from the start of the archive, which {@link PaxRecords.Recorder}
 * counts) through one reused array; the entry is then marked done, so the parent has nothing
 * left to skip and reads the next header as it would have.
 */
final class TarStream extends TarArchiveInputStream {
    private final PaxRecords.Recorder rec;
    private final byte[] scratch = new byte[8192];

    TarStream(PaxRecords.Recorder rec, String encoding) {
        super(rec, encoding);
        this.rec = rec;
    }

    /** A reader of {@code in} that only walks the headers (names as UTF-8). */
    static TarStream headers(java.io.InputStream in) {
        return new TarStream(new PaxRecords.Recorder(in), java.nio.charset.StandardCharsets.UTF_8.name());
    }

    @Override
    public TarArchiveEntry getNextEntry() throws IOException {
        if (getCurrentEntry() != null && !isAtEOF()) {
            while (read(scratch, 0, scratch.length) >= 0) {
                // the rest of the entry, usually nothing: its content was read
            }
            int record = getRecordSize();
            int pad = (int) ((record - rec.position() % record) % record);
            while (pad > 0) {
                int n = rec.read(scratch, 0, Math.min(pad, scratch.length));
                if (n < 0) {
                    throw new IOException("Truncated TAR archive"); // as the parent says it
                }
                pad -= n;
                count(n); // the parent's byte count, by which it finds the end of the last block
            }
            setCurrentEntry(null);
        }
        return super.getNextEntry();
    }
}
