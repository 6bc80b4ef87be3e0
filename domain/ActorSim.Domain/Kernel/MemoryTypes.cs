namespace ActorSim.Domain.Kernel;

/// <summary>Architectural memory types, ordered from most to least restrictive: every Device type is
/// below every Normal type, so "the more restrictive wins" is <c>min</c> (kernel-model.md §5.1).</summary>
public enum MemType : byte
{
    DeviceNGnRnE = 0,
    DeviceNGnRE = 1,
    DeviceNGRE = 2,
    DeviceGRE = 3,
    NormalNC = 4,
    NormalWT = 5,
    NormalWB = 6,
}

public static class MemTypeNames
{
    private static readonly string[] Names =
        ["Device-nGnRnE", "Device-nGnRE", "Device-nGRE", "Device-GRE", "Normal-NC", "Normal-WT", "Normal-WB"];

    public static string Name(this MemType t) => Names[(int)t];
    public static bool IsDevice(this MemType t) => t <= MemType.DeviceGRE;
    public static IReadOnlyList<MemType> All { get; } = Enum.GetValues<MemType>();

    public static bool TryParse(string name, out MemType type)
    {
        var i = Array.IndexOf(Names, name);
        type = i < 0 ? default : (MemType)i;
        return i >= 0;
    }
}

/// <summary>Stage-1 MAIR indexes Linux uses (arch/arm64/include/asm/memory.h).</summary>
public enum MairIndex : byte
{
    MT_NORMAL = 0,
    MT_NORMAL_TAGGED = 1,
    MT_NORMAL_NC = 2,
    MT_DEVICE_nGnRnE = 3,
    MT_DEVICE_nGnRE = 4,
}

public static class MairIndexes
{
    /// <summary>Memory type of a stage-1 MAIR index (MAIR values 0xFF, 0xF0, 0x44, 0x00, 0x04).</summary>
    public static MemType MemTypeOf(this MairIndex idx) => idx switch
    {
        MairIndex.MT_NORMAL or MairIndex.MT_NORMAL_TAGGED => MemType.NormalWB,
        MairIndex.MT_NORMAL_NC => MemType.NormalNC,
        MairIndex.MT_DEVICE_nGnRnE => MemType.DeviceNGnRnE,
        MairIndex.MT_DEVICE_nGnRE => MemType.DeviceNGnRE,
        _ => throw new ArgumentOutOfRangeException(nameof(idx)),
    };

    /// <summary>kvm_vma_is_cacheable (v6.17): the AttrIndx is not MT_NORMAL_NC, MT_DEVICE_nGnRnE or
    /// MT_DEVICE_nGnRE.</summary>
    public static bool IsCacheable(this MairIndex idx) =>
        idx is not (MairIndex.MT_NORMAL_NC or MairIndex.MT_DEVICE_nGnRnE or MairIndex.MT_DEVICE_nGnRE);
}
