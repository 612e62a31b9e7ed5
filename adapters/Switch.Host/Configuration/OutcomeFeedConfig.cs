namespace Switch.Host.Configuration;

/// <summary>How long each institution's outcome feed is kept on disk (derived from the journal, so not journaled).</summary>
public sealed record OutcomeFeedConfig
{
    public const int MaxRetentionDays = 3_650;
    public const int MinSegmentRecords = 16;
    public const int MaxSegmentRecords = 1 << 24;

    /// <summary>Outcomes younger than this (event time, against the feed's newest) are kept: at least the clearing
    /// records' 7 days, so an institution can re-read everything it may still have to reconcile.</summary>
    public int RetentionDays { get; init; } = 7;
    /// <summary>Outcomes per segment file (192 bytes each: 2^18 is 48 MiB); whole segments are deleted past the retention.</summary>
    public int SegmentRecords { get; init; } = 1 << 18;

    public long RetentionUs => RetentionDays * 86_400_000_000L;
}
