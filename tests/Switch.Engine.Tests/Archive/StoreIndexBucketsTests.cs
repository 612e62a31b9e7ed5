using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Archive;

/// <summary>
/// The archive's writer prefetches the store's index bucket of each write a few writes ahead. FASTER does not say
/// where a bucket is, so the archive reads it from FASTER's fields: this checks that the address it computes is the
/// bucket FASTER really put each key in (a FASTER upgrade that moves them fails here, not silently).
/// </summary>
public sealed class StoreIndexBucketsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>FASTER's bucket entry: the record's address in the low 48 bits, the hash's top 14 bits as its tag above.</summary>
    private const int AddressBits = 48;
    private const int TagBits = 14;

    private static bool Holds(ReadOnlySpan<ulong> bucket, ulong hash)
    {
        ulong tag = hash >> (64 - TagBits);
        // Seven entries; the eighth word links an overflow bucket.
        for (int i = 0; i < 7; i++)
        {
            ulong entry = bucket[i];
            bool hasAddress = (entry & ((1UL << AddressBits) - 1)) != 0;
            if (hasAddress && ((entry >> AddressBits) & ((1UL << TagBits) - 1)) == tag) return true;
        }
        return false;
    }

    [Fact]
    public void The_bucket_the_writer_prefetches_is_the_one_the_store_filed_each_order_in()
    {
        ArchiveSizing sizing = ArchiveSizing.Small;
        using FasterTransactionArchive archive = FasterTransactionArchive.Create(_dir.Path, sizing);
        StoreIndexBuckets buckets = archive.IndexBucketsForTest ?? throw new Xunit.Sdk.XunitException("this FASTER's index buckets were not found");
        Assert.Equal(sizing.IndexBytes / StoreIndexBuckets.BucketBytes, buckets.Count);

        const int orders = 300; // about a third of the 1,024 buckets: a wrong table or mask finds few of them
        var keys = new List<ScopedKey>();
        for (int i = 0; i < orders; i++)
        {
            ScopedKey key = ArchiveHandoffTests.Key($"B{i}");
            keys.Add(key);
            archive.Put(key, ArchiveHandoffTests.Tx(i + 1, $"B{i}", 100 + i));
        }
        Assert.True(archive.TryGetFromStoreForTest(keys[0], out _)); // drained: every write is in the store

        Assert.All(keys, key => Assert.True(Holds(buckets.Bucket(key.Hash64()), key.Hash64()), $"no entry for {key} in its computed bucket"));
        // And the computation is not trivially true: a bucket taken for the wrong hash rarely holds the key's tag.
        int wrong = keys.Count(key => Holds(buckets.Bucket(key.Hash64() + 1), key.Hash64()));
        Assert.True(wrong < orders / 10, $"{wrong} of {orders} keys found in a neighbouring bucket too");
    }

    [Fact]
    public void A_full_size_index_is_advised_into_huge_pages_where_the_kernel_offers_them()
    {
        string thp = "/sys/kernel/mm/transparent_hugepage/enabled";
        bool offered = OperatingSystem.IsLinux() && File.Exists(thp) && !File.ReadAllText(thp).Contains("[never]");
        using FasterTransactionArchive archive = FasterTransactionArchive.Create(_dir.Path, ArchiveSizing.Small with { IndexBytes = 64L << 20 });
        Assert.Equal(offered, archive.IndexHugePages);
    }
}
