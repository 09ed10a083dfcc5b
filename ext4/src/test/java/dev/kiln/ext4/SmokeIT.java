package dev.kiln.ext4;

import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SmokeIT {
    @TempDir Path tmp;

    @Test
    void smoke() throws Exception {
        Path img = tmp.resolve("a.img");
        Instant t = Instant.ofEpochSecond(1700000000, 123456789);
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(150L << 20).build())) {
            w.directory("/etc", Metadata.of(0755, t));
            byte[] hello = "hello\n".getBytes();
            w.file("/etc/hello", Metadata.of(0644, 1000, 1000, t), hello.length, new ByteArrayInputStream(hello));
            w.symlink("/etc/link", Metadata.of(0777, t), "hello");
            w.symlink("/etc/longlink", Metadata.of(0777, t), "x".repeat(100));
            w.hardLink("/etc/hello2", "/etc/hello");
            w.charDevice("/dev/null", Metadata.of(0666, t), 1, 3);
            w.fifo("/run/fifo", Metadata.of(0644, t));
            w.file("/usr/big", Metadata.of(0644, t).withXattrs(Map.of("user.a", "b".getBytes(), "user.long", new byte[300])), 5_000_000, new ByteArrayInputStream(new byte[5_000_000]) {
                int k;
                @Override public synchronized int read(byte[] b, int off, int len) {
                    int r = super.read(b, off, len);
                    for (int i = 0; i < r; i += 4096) { b[off + i] = (byte) (k++ | 1); }
                    return r;
                }
            });
            for (int i = 0; i < 3000; i++) {
                w.file("/many/file-" + i, Metadata.of(0644, t), 0, new ByteArrayInputStream(new byte[0]));
            }
        }
        Files.copy(img, Path.of("/tmp/smoke.img"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        ExternalTools.assertFsckClean(img);
    }
}
