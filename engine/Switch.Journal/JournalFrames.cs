using System.Buffers.Binary;

namespace Switch.Journal;

/// <summary>
/// Records as they travel to a standby: each in its journal frame (<see cref="RecordFrame"/>: format version, payload
/// length, record number, CRC-32C, payload), frames back to back with nothing between them (the frame says its own
/// length). A standby checks every frame as its own journal would, and its journal writes the very same bytes, so the
/// frame's checksum doubles as the check that the standby journaled what the primary did.
/// </summary>
public static class JournalFrames
{
    public const int HeaderBytes = RecordFrame.HeaderBytes;
    private const int LengthOffset = 4;
    private const int ChecksumOffset = 16;

    /// <summary>Reads the frame at <paramref name="offset"/> of <paramref name="frames"/>, which must be record
    /// <paramref name="expectedRecordNo"/>, whole and intact; moves the offset past it. A failure says why in
    /// <paramref name="detail"/> and leaves the offset.</summary>
    public static JournalCorruptionReason Read(ReadOnlySpan<byte> frames, ref int offset, long expectedRecordNo,
        out ReadOnlySpan<byte> payload, out uint checksum, out string detail)
    {
        payload = default;
        checksum = 0;
        ReadOnlySpan<byte> rest = frames[offset..];
        if (rest.Length < HeaderBytes)
        {
            detail = $"{rest.Length} bytes left at offset {offset}, less than a {HeaderBytes}-byte frame header";
            return JournalCorruptionReason.LengthMismatch;
        }
        int payloadBytes = BinaryPrimitives.ReadInt32LittleEndian(rest[LengthOffset..]);
        if (payloadBytes < 1 || payloadBytes > rest.Length - HeaderBytes)
        {
            detail = $"frame at offset {offset} says {payloadBytes} payload bytes, {rest.Length - HeaderBytes} follow";
            return JournalCorruptionReason.LengthMismatch;
        }
        ReadOnlySpan<byte> frame = rest[..(HeaderBytes + payloadBytes)];
        JournalCorruptionReason reason = RecordFrame.Verify(frame, expectedRecordNo, out detail);
        if (reason != JournalCorruptionReason.None) return reason;
        payload = frame[HeaderBytes..];
        checksum = Checksum(frame);
        offset += frame.Length;
        return JournalCorruptionReason.None;
    }

    /// <summary>The CRC-32C a frame carries (over its header and payload).</summary>
    public static uint Checksum(ReadOnlySpan<byte> frame) => BinaryPrimitives.ReadUInt32LittleEndian(frame[ChecksumOffset..]);

    /// <summary>The CRC-32C the frame of <paramref name="payload"/> as record <paramref name="recordNo"/> carries,
    /// without writing it: a standby checks what it is about to journal against what it received.</summary>
    public static uint ChecksumOf(long recordNo, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[ChecksumOffset];
        BinaryPrimitives.WriteUInt32LittleEndian(header, RecordFrame.FormatVersion);
        BinaryPrimitives.WriteInt32LittleEndian(header[LengthOffset..], payload.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header[8..], recordNo);
        return Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Start, header), payload));
    }

    /// <summary>Writes one frame for <paramref name="payload"/> as record <paramref name="recordNo"/> (tests, tools);
    /// returns its length.</summary>
    public static int Write(Span<byte> destination, long recordNo, ReadOnlySpan<byte> payload)
    {
        int length = HeaderBytes + payload.Length;
        RecordFrame.Write(destination[..length], recordNo, payload);
        return length;
    }
}

/// <summary>Where a reader of the committed journal stands: the next record's number and its journal address.</summary>
public readonly record struct JournalCursor(long RecordNo, long Address);

/// <summary>The records a reader asked for were retired to the journal's archive (after a snapshot): the live journal
/// no longer holds them.</summary>
public sealed class JournalRecordsRetiredException(long recordNo, long firstLiveRecordNo)
    : Exception($"journal: record {recordNo} was retired to the journal's archive; the live journal begins at record {firstLiveRecordNo}")
{
    public long RecordNo { get; } = recordNo;
    public long FirstLiveRecordNo { get; } = firstLiveRecordNo;
}

/// <summary>What <see cref="EventJournal.TruncateTo"/> cut: the records from <see cref="RecordsKept"/> on
/// (<see cref="RecordsCut"/> of them), the bytes [<see cref="Address"/>, <see cref="ResumeAddress"/>) of the log.</summary>
public sealed record JournalTruncation(long RecordsKept, long RecordsCut, long Address, long ResumeAddress);
