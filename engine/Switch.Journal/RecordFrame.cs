using System.Buffers.Binary;

namespace Switch.Journal;

/// <summary>
/// The frame this journal puts around every record, inside one FasterLog entry (all little-endian):
/// <code>
///  offset 0  u32 format version (2)
///  offset 4  i32 payload length in bytes
///  offset 8  i64 sequence number: the record's index in the journal (0, 1, 2, ...)
///  offset 16 u32 CRC-32C over bytes 0..16 and the payload
///  offset 20 payload
/// </code>
/// The sequence number makes a silently skipped, duplicated or stale record detectable: FasterLog treats
/// zeroed bytes as page padding and negative lengths as its own commit records, skipping both without a word.
/// </summary>
internal static class RecordFrame
{
    /// <summary>2: an institution request carries the client's deadline and the journaler's stamp.</summary>
    public const uint FormatVersion = 2;
    public const int HeaderBytes = 20;
    private const int ChecksummedHeaderBytes = 16;
    private const int ChecksumOffset = 16;

    /// <summary>Writes header and payload into <paramref name="frame"/>, which is exactly HeaderBytes + payload long.</summary>
    public static void Write(Span<byte> frame, long sequence, ReadOnlySpan<byte> payload)
    {
        System.Diagnostics.Debug.Assert(frame.Length == HeaderBytes + payload.Length, "frame sized for header + payload");
        BinaryPrimitives.WriteUInt32LittleEndian(frame, FormatVersion);
        BinaryPrimitives.WriteInt32LittleEndian(frame[4..], payload.Length);
        BinaryPrimitives.WriteInt64LittleEndian(frame[8..], sequence);
        payload.CopyTo(frame[HeaderBytes..]);
        uint crc = Crc32C.Append(Crc32C.Start, frame[..ChecksummedHeaderBytes]);
        crc = Crc32C.Finish(Crc32C.Append(crc, frame[HeaderBytes..]));
        BinaryPrimitives.WriteUInt32LittleEndian(frame[ChecksumOffset..], crc);
    }

    /// <summary>
    /// Checks one FasterLog entry. Order matters: the version defines the rest of the layout, the length says
    /// what the checksum covers, and the sequence number means something only once the checksum holds.
    /// The detail string is built only on failure, so the good path does not allocate.
    /// </summary>
    public static JournalCorruptionReason Verify(ReadOnlySpan<byte> entry, long expectedSequence, out string detail)
    {
        detail = "";
        if (entry.Length < HeaderBytes)
        {
            detail = $"entry of {entry.Length} bytes is shorter than the {HeaderBytes}-byte record header";
            return JournalCorruptionReason.LengthMismatch;
        }
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(entry);
        if (version != FormatVersion)
        {
            detail = $"record format version {version}, this build reads version {FormatVersion}";
            return JournalCorruptionReason.UnsupportedFormatVersion;
        }
        int payloadBytes = BinaryPrimitives.ReadInt32LittleEndian(entry[4..]);
        if (payloadBytes != entry.Length - HeaderBytes)
        {
            detail = $"header says {payloadBytes} payload bytes, the log entry holds {entry.Length - HeaderBytes}";
            return JournalCorruptionReason.LengthMismatch;
        }
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(entry[ChecksumOffset..]);
        uint computed = Crc32C.Append(Crc32C.Start, entry[..ChecksummedHeaderBytes]);
        computed = Crc32C.Finish(Crc32C.Append(computed, entry[HeaderBytes..]));
        if (stored != computed)
        {
            detail = $"stored CRC-32C 0x{stored:X8}, computed 0x{computed:X8}";
            return JournalCorruptionReason.ChecksumMismatch;
        }
        long sequence = Sequence(entry);
        if (sequence != expectedSequence)
        {
            detail = $"record sequence number {sequence}, expected {expectedSequence}";
            return JournalCorruptionReason.SequenceMismatch;
        }
        return JournalCorruptionReason.None;
    }

    /// <summary>The sequence number a frame carries (trusted only once <see cref="Verify"/> passed).</summary>
    public static long Sequence(ReadOnlySpan<byte> frame) => BinaryPrimitives.ReadInt64LittleEndian(frame[8..]);

    /// <summary>True if the entry is a whole, checksum-valid record of this format, whatever its sequence number.</summary>
    public static bool IsIntact(ReadOnlySpan<byte> entry)
    {
        if (entry.Length < HeaderBytes) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(entry) != FormatVersion) return false;
        if (BinaryPrimitives.ReadInt32LittleEndian(entry[4..]) != entry.Length - HeaderBytes) return false;
        uint computed = Crc32C.Append(Crc32C.Start, entry[..ChecksummedHeaderBytes]);
        computed = Crc32C.Finish(Crc32C.Append(computed, entry[HeaderBytes..]));
        return computed == BinaryPrimitives.ReadUInt32LittleEndian(entry[ChecksumOffset..]);
    }
}
