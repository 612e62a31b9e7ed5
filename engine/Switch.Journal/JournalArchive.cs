using System.Buffers.Binary;
using System.Globalization;

namespace Switch.Journal;

/// <summary>
/// The journal's archive: records retired from the live log (<see cref="EventJournal.Retire"/>), kept for audits
/// (regulators keep transaction records for years: nothing here deletes them). One file per retirement,
/// <c>records-FIRST-END.journal</c> for records FIRST to END-1, each record as an i32 length and the record's journal
/// frame (<see cref="RecordFrame"/>: version, length, sequence number, CRC-32C), so every record is checked on reading
/// exactly as in the live log. A file is published whole (temporary, fsync, rename, directory fsync). Only a configured
/// retention deletes files (<see cref="DeleteWrittenBefore"/>), the oldest first, so what is left still chains.
/// </summary>
public static class JournalArchive
{
    private const string Prefix = "records-";
    private const string Extension = ".journal";
    /// <summary>The largest record a file may hold (the journal's genesis record is the largest kind).</summary>
    private const int MaxFrameBytes = 1 << 20;

    /// <summary>Writes one retirement's records.</summary>
    public sealed class Writer : IDisposable
    {
        private readonly string _directory;
        private readonly long _first;
        private readonly string _temporary;
        /// <summary>Direct: a retirement copies hundreds of MiB beside the live journal (<see cref="DirectWriter"/>).</summary>
        private readonly DirectWriter _file;
        private long _next;
        private bool _published;

        /// <param name="wrote">A write budget's hook (see <see cref="DirectWriter.Create"/>); null: as fast as the disk takes it.</param>
        public Writer(string directory, long firstRecordNo, Action<long>? wrote = null)
        {
            DirectorySync.CreateDirectory(directory);
            _directory = directory;
            _first = firstRecordNo;
            _next = firstRecordNo;
            _temporary = Path.Combine(directory, $"{Prefix}{firstRecordNo:D20}.tmp");
            _file = DirectWriter.Create(_temporary, wrote);
        }

        /// <summary>Appends one record as the live journal holds it: its whole frame, verified by the caller (the same
        /// bytes as framing its payload again with its number, without a second CRC over it).</summary>
        public void AppendFrame(ReadOnlySpan<byte> frame)
        {
            if (frame.Length < RecordFrame.HeaderBytes || frame.Length > MaxFrameBytes)
                throw new ArgumentException($"journal archive: a frame of {frame.Length} bytes", nameof(frame));
            long sequence = RecordFrame.Sequence(frame);
            if (sequence != _next) throw new ArgumentException($"journal archive: record {sequence} where record {_next} belongs", nameof(frame));
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(length, frame.Length);
            _file.Write(length);
            _file.Write(frame);
            _next++;
        }

        /// <summary>Makes the file durable under its final name; <paramref name="endRecordNo"/> is one past its last record.</summary>
        public void Publish(long endRecordNo)
        {
            if (endRecordNo != _next) throw new InvalidOperationException($"journal archive: {_next - _first} records written, {endRecordNo - _first} expected");
            _file.Sync();
            _file.Dispose();
            File.Move(_temporary, Path.Combine(_directory, $"{Prefix}{_first:D20}-{endRecordNo:D20}{Extension}"), overwrite: false);
            DirectorySync.Flush(_directory);
            _published = true;
        }

        public void Dispose()
        {
            _file.Dispose();
            if (!_published && File.Exists(_temporary)) File.Delete(_temporary);
        }
    }

    /// <summary>The archive's files in record order, each with its range; throws if a range is missing or overlaps
    /// (the history must be whole from record 0, or with <paramref name="fromGenesis"/> false from its first file: a
    /// retention deleted those before).</summary>
    public static IReadOnlyList<(long First, long End, string Path)> Files(string directory, bool fromGenesis = true)
    {
        var files = new List<(long First, long End, string Path)>();
        if (!Directory.Exists(directory)) return files;
        foreach (string path in Directory.EnumerateFiles(directory, Prefix + "*" + Extension))
        {
            string[] range = Path.GetFileNameWithoutExtension(path)[Prefix.Length..].Split('-');
            if (range.Length != 2
                || !long.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out long first)
                || !long.TryParse(range[1], NumberStyles.None, CultureInfo.InvariantCulture, out long end) || end <= first)
                throw new InvalidDataException($"journal archive: {path} is not named records-FIRST-END{Extension}");
            files.Add((first, end, path));
        }
        files.Sort((a, b) => a.First.CompareTo(b.First));
        long expected = fromGenesis || files.Count == 0 ? 0 : files[0].First;
        foreach (var (first, end, path) in files)
        {
            if (first != expected) throw new InvalidDataException($"journal archive: {path} begins at record {first}, the history before it ends at {expected}");
            expected = end;
        }
        return files;
    }

    /// <summary>
    /// Retention: deletes the oldest files last written before <paramref name="cutoffUtc"/> (a file is written when its
    /// records retire, so they are older still), in record order up to the first newer one: what is left still chains.
    /// Returns how many were deleted. After it, the history no longer replays from the genesis (a start with no usable
    /// snapshot, or verify-history, says which records are missing). A file leaves its name at once and its blocks are
    /// freed in paced steps (<see cref="FileReclaimer"/>): a retirement's file is hundreds of MB.
    /// </summary>
    public static int DeleteWrittenBefore(string directory, DateTime cutoffUtc)
    {
        FileReclaimer.Shared.ReclaimLeftovers(directory, Prefix + "*" + Extension);
        int deleted = 0;
        foreach (var (_, _, path) in Files(directory, fromGenesis: false))
        {
            if (File.GetLastWriteTimeUtc(path) >= cutoffUtc) break;
            FileReclaimer.Shared.Delete(path);
            deleted++;
        }
        if (deleted > 0) DirectorySync.Flush(directory);
        return deleted;
    }

    /// <summary>Visits every archived record from record 0 in order, each verified; returns how many (the next record's
    /// number). The visitor is given address -1: archived records have no live address.</summary>
    public static long Replay(string directory, IJournalVisitor visitor)
    {
        long next = 0;
        byte[] frame = new byte[MaxFrameBytes];
        Span<byte> length = stackalloc byte[4];
        foreach (var (first, end, path) in Files(directory))
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            for (long recordNo = first; recordNo < end; recordNo++)
            {
                ReadExactly(file, length, path, recordNo);
                int frameBytes = BinaryPrimitives.ReadInt32LittleEndian(length);
                if (frameBytes < RecordFrame.HeaderBytes || frameBytes > MaxFrameBytes)
                    throw new JournalCorruptException(-1, JournalCorruptionReason.LengthMismatch, $"{path}: record {recordNo} of {frameBytes} bytes");
                ReadExactly(file, frame.AsSpan(0, frameBytes), path, recordNo);
                var reason = RecordFrame.Verify(frame.AsSpan(0, frameBytes), recordNo, out string detail);
                if (reason != JournalCorruptionReason.None) throw new JournalCorruptException(-1, reason, $"{path}: record {recordNo}: {detail}");
                visitor.OnRecord(-1, frame.AsSpan(RecordFrame.HeaderBytes, frameBytes - RecordFrame.HeaderBytes));
            }
            if (file.Position != file.Length) throw new JournalCorruptException(-1, JournalCorruptionReason.LengthMismatch, $"{path}: bytes after record {end - 1}");
            next = end;
        }
        return next;
    }

    private static void ReadExactly(FileStream file, Span<byte> into, string path, long recordNo)
    {
        try
        {
            file.ReadExactly(into);
        }
        catch (EndOfStreamException)
        {
            throw new JournalCorruptException(-1, JournalCorruptionReason.Unreadable, $"{path}: ends inside record {recordNo}");
        }
    }
}
