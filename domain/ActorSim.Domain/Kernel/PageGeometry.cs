namespace ActorSim.Domain.Kernel;

/// <summary>arm64 with 4 KiB pages and 4-level (48-bit) tables: PAGE, PMD and PUD sizes.</summary>
public static class PageGeometry
{
    public const int PageShift = 12;
    public const ulong PageSize = 1UL << PageShift;
    public const int PmdShift = 21;
    public const ulong PmdSize = 1UL << PmdShift;
    public const int PudShift = 30;
    public const ulong PudSize = 1UL << PudShift;

    public static bool IsPageAligned(ulong v) => (v & (PageSize - 1)) == 0;
    public static ulong PageAlign(ulong v) => (v + PageSize - 1) & ~(PageSize - 1);
    public static ulong AlignDown(ulong v, ulong size) => v & ~(size - 1);
    /// <summary>The kernel's ALIGN(): round up; an aligned value stays as it is.</summary>
    public static ulong AlignUp(ulong v, ulong size) => (v + size - 1) & ~(size - 1);

    /// <summary>Stage-2 level of a leaf of the given size (3: page, 2: PMD block, 1: PUD block).</summary>
    public static int LevelOf(ulong size) => size switch
    {
        PageSize => 3,
        PmdSize => 2,
        PudSize => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(size), size, "not a stage-2 leaf size"),
    };

    public static ulong SizeOfLevel(int level) => level switch
    {
        3 => PageSize,
        2 => PmdSize,
        1 => PudSize,
        _ => throw new ArgumentOutOfRangeException(nameof(level), level, "not a stage-2 leaf level"),
    };
}
