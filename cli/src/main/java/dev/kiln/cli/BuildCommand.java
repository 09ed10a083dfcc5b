package dev.kiln.cli;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.image.Build;
import dev.kiln.image.Sizes;
import dev.kiln.image.Source;
import dev.kiln.image.Sources;
import java.nio.file.Path;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "build", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Builds an ext4 root file system image from a source, in one streaming pass.",
            "Sources: tar:FILE (plain, gzip, xz, zstd or bzip2), dir:PATH, scratch."})
final class BuildCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--image", paramLabel = "REF", description = "Base image: tar:FILE, dir:PATH or scratch.")
    String image;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", defaultValue = "rootfs.ext4",
            description = "Output image (default: ${DEFAULT-VALUE}); a name ending in .gz is gzip-compressed. "
                    + "FILE.sha256 is written beside it.")
    Path output;

    @Option(names = "--size", paramLabel = "SIZE", defaultValue = "150M",
            description = "Image size in bytes or with a K/M/G/T suffix (default: ${DEFAULT-VALUE}).")
    String size;

    @Option(names = "--block-size", paramLabel = "BYTES", defaultValue = "4096",
            description = "Block size: 1024, 2048 or 4096 (default: ${DEFAULT-VALUE}).")
    int blockSize;

    @Option(names = "--inode-ratio", paramLabel = "BYTES", defaultValue = "16384",
            description = "Bytes per inode (default: ${DEFAULT-VALUE}).")
    long inodeRatio;

    @Option(names = "--inodes", paramLabel = "N", description = "Number of inodes (overrides --inode-ratio).")
    Long inodes;

    @Option(names = "--label", paramLabel = "NAME", defaultValue = "", description = "Volume label (up to 16 bytes).")
    String label;

    @Option(names = "--uuid", paramLabel = "UUID",
            description = "File system UUID (default: derived from the content, so builds are reproducible).")
    String uuid;

    @Option(names = "--hash-seed", paramLabel = "UUID",
            description = "htree directory hash seed (default: derived from the UUID).")
    String hashSeed;

    @Option(names = "--source-date-epoch", paramLabel = "SECONDS",
            description = "Time for the superblock and implicit directories (default: $SOURCE_DATE_EPOCH, else 0).")
    Long sourceDateEpoch;

    @Option(names = "--clamp-times", description = "Clamp inode times later than the source date epoch to it.")
    boolean clampTimes;

    @Option(names = "--inline-data", description = "Enable inline_data: files of up to 60 bytes live in their inode.")
    boolean inlineData;

    @Option(names = "--no-sparse", description = "Allocate all-zero blocks of files instead of leaving holes.")
    boolean noSparse;

    @Option(names = "--no-checksum-file", description = "Do not write OUTPUT.sha256.")
    boolean noChecksumFile;

    @Option(names = {"-q", "--quiet"}, description = "Print nothing on stderr but errors.")
    boolean quiet;

    @Option(names = "--json", description = "Print a JSON summary on stdout.")
    boolean json;

    @Option(names = "--stacktrace", description = "Print the stack trace of an error.")
    boolean stacktrace;

    @Override
    public Integer call() throws Exception {
        if (image == null) {
            throw new Errors.UsageException("--image is required (tar:FILE, dir:PATH or scratch); "
                    + "registry images are not supported yet");
        }
        long bytes;
        try {
            bytes = Sizes.parse(size);
        } catch (IllegalArgumentException e) {
            throw new Errors.UsageException("--size: " + e.getMessage());
        }
        Long epoch = sourceDateEpoch;
        if (epoch == null) {
            String env = System.getenv("SOURCE_DATE_EPOCH");
            if (env != null && !env.isBlank()) {
                try {
                    epoch = Long.parseLong(env.trim());
                } catch (NumberFormatException e) {
                    throw new Errors.UsageException("SOURCE_DATE_EPOCH is not a number of seconds: " + env);
                }
            }
        }
        Instant time = Instant.ofEpochSecond(epoch == null ? 0 : epoch);
        Ext4Options.Builder ob = Ext4Options.builder(bytes).blockSize(blockSize).inodeRatio(inodeRatio)
                .label(label).timestamp(time).sparseFiles(!noSparse).inlineData(inlineData);
        if (inodes != null) {
            ob.inodeCount(inodes);
        }
        if (clampTimes) {
            ob.clampTimes(time);
        }
        if (uuid != null) {
            ob.uuid(uuidBytes(uuid, "--uuid"));
        }
        if (hashSeed != null) {
            ob.hashSeed(uuidBytes(hashSeed, "--hash-seed"));
        }
        Source source = Sources.parse(image);
        if (!quiet) {
            spec.commandLine().getErr().println("kiln: building " + output + " (" + Sizes.human(bytes) + ") from " + source.describe());
        }
        Build.Result r = Build.builder().source(source).options(ob.build()).output(output)
                .checksumFile(!noChecksumFile).digest(json).build().run();
        var s = r.summary();
        if (!quiet) {
            long used = s.blocksCount() - s.freeBlocks();
            spec.commandLine().getErr().printf(Locale.ROOT, "kiln: wrote %s: %d files, %d directories, %d symlinks; %s of %s used%n",
                    r.output(), s.files(), s.directories(), s.symlinks(), Sizes.human(used * s.blockSize()),
                    Sizes.human(s.blocksCount() * s.blockSize()));
        }
        if (json) {
            spec.commandLine().getOut().printf(Locale.ROOT,
                    "{\"output\":%s,\"sha256\":\"%s\",\"bytes\":%d,\"blockSize\":%d,\"blocks\":%d,\"freeBlocks\":%d,"
                            + "\"inodes\":%d,\"freeInodes\":%d,\"uuid\":\"%s\",\"files\":%d,\"directories\":%d,"
                            + "\"symlinks\":%d,\"devices\":%d,\"other\":%d}%n",
                    Json.string(r.output().toString()), r.sha256(), r.bytes(), s.blockSize(), s.blocksCount(),
                    s.freeBlocks(), s.inodesCount(), s.freeInodes(), uuidString(s.uuid()), s.files(),
                    s.directories(), s.symlinks(), s.devices(), s.others());
        }
        return Kiln.OK;
    }

    static byte[] uuidBytes(String s, String option) {
        try {
            UUID u = UUID.fromString(s);
            byte[] b = new byte[16];
            long hi = u.getMostSignificantBits();
            long lo = u.getLeastSignificantBits();
            for (int i = 0; i < 8; i++) {
                b[i] = (byte) (hi >>> (56 - 8 * i));
                b[8 + i] = (byte) (lo >>> (56 - 8 * i));
            }
            return b;
        } catch (IllegalArgumentException e) {
            throw new Errors.UsageException(option + ": not a UUID: " + s);
        }
    }

    static String uuidString(byte[] b) {
        String h = HexFormat.of().formatHex(b);
        return h.substring(0, 8) + "-" + h.substring(8, 12) + "-" + h.substring(12, 16) + "-" + h.substring(16, 20)
                + "-" + h.substring(20);
    }
}
