package enrolmentsync.peer;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The sync event of one (trigger, user), byte for byte what enrolment-sync writes: the design's
 * key order, JSON quoting as JavaScript's JSON.stringify does it, ets = the trigger's requestedAt,
 * mid = "LP.<ets>.<uuid>" with a name-based (v5, SHA-1) UUID of the JSON array [triggerId, userId]
 * in enrolment-sync's namespace. One instance per thread: it keeps a SHA-1 digest.
 */
final class SyncEvents {
  /** enrolment-sync's namespace for event ids, 6f1d2c8e-4b7a-4e3f-9a0d-5c2b1e8f7a63. */
  private static final byte[] NAMESPACE = HexFormat.of().parseHex("6f1d2c8e4b7a4e3f9a0d5c2b1e8f7a63");
  private static final char[] HEX = "0123456789abcdef".toCharArray();

  private final MessageDigest sha1;
  private final String triggerJson;
  private final String head;
  private final String batchIdJson;
  private final String objectIdPrefix;
  private final String courseIdJson;
  private final StringBuilder out = new StringBuilder(512);
  private final StringBuilder name = new StringBuilder(128);

  SyncEvents(String triggerId, String courseId, String batchId, long requestedAt) {
    try {
      sha1 = MessageDigest.getInstance("SHA-1");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    triggerJson = quote(triggerId);
    head = "{\"eid\":\"BE_JOB_REQUEST\",\"ets\":" + requestedAt + ",\"mid\":\"LP." + requestedAt + ".";
    batchIdJson = quote(batchId);
    courseIdJson = quote(courseId);
    objectIdPrefix = batchId + "_";
  }

  /** The event of one user, as JSON text. */
  String event(String userId) {
    String userJson = quote(userId);
    StringBuilder b = out;
    b.setLength(0);
    b.append(head);
    appendUuid(b, userJson);
    b.append("\",\"actor\":{\"type\":\"System\",\"id\":\"Course Batch Updater\"}")
        .append(",\"context\":{\"pdata\":{\"ver\":\"1.0\",\"id\":\"org.sunbird.platform\"}}")
        .append(",\"object\":{\"type\":\"CourseBatchEnrolment\",\"id\":");
    appendQuoted(b, objectIdPrefix + userId);
    b.append("},\"edata\":{\"action\":\"user-enrolment-sync\",\"iteration\":1,\"batchId\":")
        .append(batchIdJson)
        .append(",\"userId\":")
        .append(userJson)
        .append(",\"courseId\":")
        .append(courseIdJson)
        .append("}}");
    return b.toString();
  }

  /** RFC 9562 version 5: SHA-1 over namespace ‖ name, version and variant bits set, 16 bytes. */
  private void appendUuid(StringBuilder b, String userJson) {
    name.setLength(0);
    name.append('[').append(triggerJson).append(',').append(userJson).append(']');
    sha1.update(NAMESPACE);
    byte[] d = sha1.digest(name.toString().getBytes(StandardCharsets.UTF_8));
    d[6] = (byte) ((d[6] & 0x0f) | 0x50);
    d[8] = (byte) ((d[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++) {
      if (i == 4 || i == 6 || i == 8 || i == 10) b.append('-');
      b.append(HEX[(d[i] >> 4) & 0xf]).append(HEX[d[i] & 0xf]);
    }
  }

  static String quote(String s) {
    StringBuilder b = new StringBuilder(s.length() + 2);
    appendQuoted(b, s);
    return b.toString();
  }

  /**
   * A string literal as JSON.stringify writes it (ECMA-262 QuoteJSONString): the two-character
   * escapes for " \ \b \f \n \r \t, other controls and lone surrogates as lower-case \\uXXXX,
   * everything else (also / and U+2028) as it is.
   */
  static void appendQuoted(StringBuilder b, String s) {
    b.append('"');
    int n = s.length();
    for (int i = 0; i < n; i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\b' -> b.append("\\b");
        case '\f' -> b.append("\\f");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (c < 0x20) {
            appendUnicodeEscape(b, c);
          } else if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
            b.append(c).append(s.charAt(++i));
          } else if (Character.isSurrogate(c)) {
            appendUnicodeEscape(b, c);
          } else {
            b.append(c);
          }
        }
      }
    }
    b.append('"');
  }

  private static void appendUnicodeEscape(StringBuilder b, char c) {
    b.append("\\u").append(HEX[(c >> 12) & 0xf]).append(HEX[(c >> 8) & 0xf]).append(HEX[(c >> 4) & 0xf]).append(HEX[c & 0xf]);
  }
}
