namespace Switch.Journal;

/// <summary>Why a record (or the manifest) failed verification.</summary>
public enum JournalCorruptionReason
{
    None = 0,
    /// <summary>The record's format version is not one this build reads.</summary>
    UnsupportedFormatVersion,
    /// <summary>The payload length in the header disagrees with the FasterLog entry, or the entry is too short.</summary>
    LengthMismatch,
    /// <summary>The CRC-32C does not match the header and payload.</summary>
    ChecksumMismatch,
    /// <summary>A whole, valid record with the wrong sequence number: records before it are missing, or it is stale.</summary>
    SequenceMismatch,
    /// <summary>FasterLog could not read an entry here, or committed bytes here read as empty (zeroed or truncated).</summary>
    Unreadable,
    /// <summary>The manifest file fails its own checksum or layout checks.</summary>
    ManifestCorrupt,
    /// <summary>The manifest disagrees with the FasterLog commit (for example a cut beyond the committed tail).</summary>
    ManifestInconsistent,
    /// <summary>A file the journal had made is gone or short (lost by a power cut on storage that did not keep it).</summary>
    Missing,
}

/// <summary>
/// The journal holds a record that fails verification with valid records after it (so it is not a torn tail),
/// or a bad manifest. Recovery must not guess: an operator decides.
/// </summary>
public sealed class JournalCorruptException : Exception
{
    /// <summary>Journal address of the first bad record; -1 when the manifest or a whole file is at fault.</summary>
    public long Address { get; }

    public JournalCorruptionReason Reason { get; }

    public JournalCorruptException(long address, JournalCorruptionReason reason, string detail)
        : base(address >= 0
            ? $"Journal corrupt at address {address}: {reason}: {detail}"
            : $"Journal unusable: {reason}: {detail}")
    {
        Address = address;
        Reason = reason;
    }
}
