namespace Switch.Engine.Hashing;

/// <summary>The slots of an open-addressing table with linear probing, as <see cref="BackwardShift"/> sees them.</summary>
public interface IProbeSlots
{
    /// <summary>Slots - 1 (the table's size is a power of two).</summary>
    int Mask { get; }
    bool Occupied(int slot);
    /// <summary>Where the entry in <paramref name="slot"/> would sit with no collision.</summary>
    int Home(int slot);
    void Move(int from, int to);
    void Clear(int slot);
}

/// <summary>
/// Deletion from a linear-probing table without tombstones: each later entry of the run moves back into the hole
/// unless its home lies after the hole, so probes stay as short as if the deleted entry had never been there.
/// Generic over a struct so each table's accessors are inlined.
/// </summary>
public static class BackwardShift
{
    public static void Delete<TSlots>(TSlots table, int slot) where TSlots : struct, IProbeSlots
    {
        int mask = table.Mask;
        int hole = slot;
        for (int j = (hole + 1) & mask; table.Occupied(j); j = (j + 1) & mask)
        {
            int home = table.Home(j);
            bool homeAfterHole = hole <= j ? home > hole && home <= j : home > hole || home <= j;
            if (!homeAfterHole)
            {
                table.Move(j, hole);
                hole = j;
            }
        }
        table.Clear(hole);
    }
}
