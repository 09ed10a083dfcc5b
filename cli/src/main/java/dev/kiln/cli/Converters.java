package dev.kiln.cli;

import dev.kiln.image.Sizes;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * Typed option values: picocli converts and rejects them while parsing (exit 2 with the option
 * named), so commands receive checked values. Each keeps the text it was given as its
 * {@code toString()}, which is what {@code --print-config} prints back.
 */
final class Converters {
    private Converters() {}

    /** A size in bytes: a number, or with a K/M/G/T suffix (powers of 1024). */
    record Size(long bytes, String text) {
        @Override
        public String toString() {
            return text;
        }
    }

    /** {@code --size}: a {@link Size}, or {@code auto} (bytes 0): the content plus {@code --free}. */
    record ImageSize(Size size) {
        boolean auto() {
            return size == null;
        }

        long bytes() {
            return size == null ? 0 : size.bytes();
        }

        @Override
        public String toString() {
            return size == null ? "auto" : size.toString();
        }
    }

    /** The agent's user: a name, with its uid and gid (default 1000:1000). */
    record ServiceUser(String name, long uid, long gid) {
        @Override
        public String toString() {
            return name + ":" + uid + ":" + gid;
        }
    }

    static final class SizeConverter implements ITypeConverter<Size> {
        @Override
        public Size convert(String value) {
            try {
                return new Size(Sizes.parse(value), value);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }

    static final class ImageSizeConverter implements ITypeConverter<ImageSize> {
        @Override
        public ImageSize convert(String value) {
            return value.equalsIgnoreCase("auto") ? new ImageSize(null) : new ImageSize(new SizeConverter().convert(value));
        }
    }

    static final class ServiceUserConverter implements ITypeConverter<ServiceUser> {
        @Override
        public ServiceUser convert(String value) {
            String[] u = value.split(":", -1);
            if (u[0].isEmpty() || (u.length != 1 && u.length != 3)) {
                throw new TypeConversionException("want NAME or NAME:UID:GID, e.g. nex:1000:1000: " + value);
            }
            if (u.length == 1) {
                return new ServiceUser(u[0], 1000, 1000);
            }
            try {
                long uid = Long.parseLong(u[1]);
                long gid = Long.parseLong(u[2]);
                if (uid < 0 || gid < 0 || uid > 0xFFFFFFFFL || gid > 0xFFFFFFFFL) {
                    throw new NumberFormatException();
                }
                return new ServiceUser(u[0], uid, gid);
            } catch (NumberFormatException e) {
                throw new TypeConversionException("uid and gid must be numbers from 0 to 4294967295: " + value);
            }
        }
    }

    /** Seconds since the epoch; from the option or from {@code $SOURCE_DATE_EPOCH}, its default. */
    static final class EpochConverter implements ITypeConverter<Long> {
        @Override
        public Long convert(String value) {
            try {
                return Long.parseLong(value.trim());
            } catch (NumberFormatException e) {
                throw new TypeConversionException("not a number of seconds since 1970 (from the option or "
                        + "$SOURCE_DATE_EPOCH): " + value);
            }
        }
    }
}
