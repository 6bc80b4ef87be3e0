namespace ActorSim.Domain.Stage2;

/// <summary>Stage-2 leaf descriptor bits (kernel-model.md §4.4; KVM_PTE_LEAF_ATTR_* in
/// arch/arm64/include/asm/kvm_pgtable.h).</summary>
public static class Stage2Descriptor
{
    public const ulong Valid = 1UL << 0;
    public const ulong TypePage = 1UL << 1;
    public const int MemAttrShift = 2;
    public const ulong S2apR = 1UL << 6;
    public const ulong S2apW = 1UL << 7;
    public const ulong ShInner = 3UL << 8;
    public const ulong Af = 1UL << 10;
    public const ulong XnBit = 1UL << 54;
    public const ulong OaMask = 0x0000_FFFF_FFFF_F000UL;

    /// <summary>The 64-bit leaf KVM writes: valid, page/block type by level, MemAttr, S2AP, SH (not
    /// with LPA2), AF, output address, XN, SW bits.</summary>
    public static ulong Encode(ulong pfn, int level, in Stage2Attr attr, bool lpa2 = false)
    {
        var d = Valid | Af | ((ulong)attr.MemAttr << MemAttrShift) | ((pfn << 12) & OaMask) | attr.SwBits;
        if (level == 3) d |= TypePage;
        if (attr.Read) d |= S2apR;
        if (attr.Write) d |= S2apW;
        if (!lpa2) d |= ShInner;
        if (attr.XN) d |= XnBit;
        return d;
    }

    public static byte MemAttrOf(ulong d) => (byte)((d >> MemAttrShift) & 0xF);
    public static ulong PfnOf(ulong d) => (d & OaMask) >> 12;
}
