using System.Buffers.Binary;

namespace Switch.Journal;

/// <summary>
/// The journal's small side file: the record format it was written with, and every torn-tail cut so far.
/// <para>
/// Why cuts: FasterLog cannot truncate its own tail. After a torn tail its recovered tail address T stays past the
/// bad bytes, and every new append lands after them; a later scan would meet the bad bytes first (or, if they read
/// as zeros, silently skip to the next page and hide the new records). So a cut records the skip range
/// [Address, ResumeAddress): Replay reads [begin, cut1.Address), [cut1.Resume, cut2.Address), ... [cutN.Resume, tail)
/// and never looks inside a range again. ResumeAddress is the committed tail at the time of the cut, where FasterLog
/// puts the next append. One FasterLog, one address space, no data copied.
/// </para>
/// <para>
/// Written atomically: a temporary file, fsync, rename over the old one, fsync of the directory. A crash before the
/// rename leaves the old manifest and the next Replay finds the same torn tail again (the cut is idempotent).
/// </para>
/// Layout (little-endian): "SWJM", u32 manifest version, u32 record format version, u32 cut count, (version 2:) i64
/// retired address, i64 retired records, i64 segment bytes, then per cut i64 address, i64 resume address, i64 records before; then u32
/// CRC-32C of everything before it. Version 1 (no retirement) is read as retiring nothing, its segment size unknown.
/// The segment size is the log's own: a FasterLog opened with another maps addresses to the wrong files.
/// <para>Retirement (see <see cref="EventJournal.Retire"/>): the records before <see cref="RetiredRecords"/> (which begin
/// at <see cref="RetiredAddress"/>) were copied to the journal's archive and left the live log.</para>
/// </summary>
internal sealed class JournalManifest
{
    private const uint Magic = 0x4D4A5753; // "SWJM"
    private const uint ManifestVersion = 2;
    private const int HeaderBytesV1 = 16;
    private const int HeaderBytes = 40;
    private const int CutBytes = 24;
    /// <summary>Each cut is an incident an operator should have looked at; this many means something is badly wrong.</summary>
    internal const int MaxCuts = 1024;

    public readonly record struct Cut(long Address, long ResumeAddress, long RecordsBefore);

    public List<Cut> Cuts { get; } = new();
    /// <summary>The first live record's address once older ones were retired (0: none retired).</summary>
    public long RetiredAddress { get; set; }
    /// <summary>Records retired: the first live record's number.</summary>
    public long RetiredRecords { get; set; }
    /// <summary>The log's segment size when it was made (0: a version 1 manifest, not recorded).</summary>
    public long SegmentBytes { get; set; }

    public static JournalManifest Read(JournalLayout layout) => Parse(File.ReadAllBytes(layout.ManifestPath));

    /// <summary>A new journal's manifest, written (durably) after its other files: its presence says the journal exists.</summary>
    public static JournalManifest Create(JournalLayout layout)
    {
        var fresh = new JournalManifest { SegmentBytes = layout.SegmentSizeBytes };
        fresh.WriteAtomically(layout);
        return fresh;
    }

    internal static JournalManifest Parse(byte[] bytes)
    {
        if (bytes.Length < HeaderBytesV1 + sizeof(uint))
            throw Corrupt($"{bytes.Length} bytes is too short");
        int bodyBytes = bytes.Length - sizeof(uint);
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bodyBytes));
        uint computed = Crc32C.Compute(bytes.AsSpan(0, bodyBytes));
        if (stored != computed) throw Corrupt($"stored CRC-32C 0x{stored:X8}, computed 0x{computed:X8}");
        var span = bytes.AsSpan();
        if (BinaryPrimitives.ReadUInt32LittleEndian(span) != Magic) throw Corrupt("bad magic");
        uint manifestVersion = BinaryPrimitives.ReadUInt32LittleEndian(span[4..]);
        if (manifestVersion is not (1 or ManifestVersion)) throw Corrupt($"manifest version {manifestVersion}, this build reads 1 and {ManifestVersion}");
        int headerBytes = manifestVersion == 1 ? HeaderBytesV1 : HeaderBytes;
        uint recordVersion = BinaryPrimitives.ReadUInt32LittleEndian(span[8..]);
        if (recordVersion != RecordFrame.FormatVersion)
            throw new JournalCorruptException(-1, JournalCorruptionReason.UnsupportedFormatVersion,
                $"journal written with record format version {recordVersion}, this build reads version {RecordFrame.FormatVersion}");
        uint cutCount = BinaryPrimitives.ReadUInt32LittleEndian(span[12..]);
        if (cutCount > MaxCuts || bodyBytes != headerBytes + cutCount * CutBytes)
            throw Corrupt($"{cutCount} cuts do not fit {bodyBytes} bytes (at most {MaxCuts})");
        var manifest = new JournalManifest();
        if (manifestVersion >= 2)
        {
            manifest.RetiredAddress = BinaryPrimitives.ReadInt64LittleEndian(span[16..]);
            manifest.RetiredRecords = BinaryPrimitives.ReadInt64LittleEndian(span[24..]);
            manifest.SegmentBytes = BinaryPrimitives.ReadInt64LittleEndian(span[32..]);
            if (manifest.RetiredAddress < 0 || manifest.RetiredRecords < 0 || (manifest.RetiredRecords == 0) != (manifest.RetiredAddress == 0))
                throw Corrupt($"retired {manifest.RetiredRecords} records up to address {manifest.RetiredAddress}");
        }
        for (int i = 0; i < cutCount; i++)
        {
            var at = span.Slice(headerBytes + i * CutBytes, CutBytes);
            manifest.Cuts.Add(new Cut(
                BinaryPrimitives.ReadInt64LittleEndian(at),
                BinaryPrimitives.ReadInt64LittleEndian(at[8..]),
                BinaryPrimitives.ReadInt64LittleEndian(at[16..])));
        }
        return manifest;
    }

    internal byte[] Serialize()
    {
        var bytes = new byte[HeaderBytes + Cuts.Count * CutBytes + sizeof(uint)];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], ManifestVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], RecordFrame.FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], (uint)Cuts.Count);
        BinaryPrimitives.WriteInt64LittleEndian(span[16..], RetiredAddress);
        BinaryPrimitives.WriteInt64LittleEndian(span[24..], RetiredRecords);
        BinaryPrimitives.WriteInt64LittleEndian(span[32..], SegmentBytes);
        for (int i = 0; i < Cuts.Count; i++)
        {
            var at = span.Slice(HeaderBytes + i * CutBytes, CutBytes);
            BinaryPrimitives.WriteInt64LittleEndian(at, Cuts[i].Address);
            BinaryPrimitives.WriteInt64LittleEndian(at[8..], Cuts[i].ResumeAddress);
            BinaryPrimitives.WriteInt64LittleEndian(at[16..], Cuts[i].RecordsBefore);
        }
        int bodyBytes = bytes.Length - sizeof(uint);
        BinaryPrimitives.WriteUInt32LittleEndian(span[bodyBytes..], Crc32C.Compute(span[..bodyBytes]));
        return bytes;
    }

    public void WriteAtomically(JournalLayout layout)
    {
        string temporary = layout.ManifestPath + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(Serialize());
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, layout.ManifestPath, overwrite: true);
        DirectorySync.Flush(layout.DirectoryPath);
    }

    private static JournalCorruptException Corrupt(string detail) =>
        new(-1, JournalCorruptionReason.ManifestCorrupt, detail);
}
