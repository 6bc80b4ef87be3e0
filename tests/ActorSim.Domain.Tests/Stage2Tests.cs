using ActorSim.Domain.Kernel;
using ActorSim.Domain.Stage2;
using static ActorSim.Domain.Stage2.KvmPgtableProt;

namespace ActorSim.Domain.Tests;

/// <summary>kernel-model.md §4.2 (stage2_set_prot_attr) and §4.3–4.4 (encodings).</summary>
public class Stage2SetProtAttrTests
{
    // §4.2, v6.9+ table: DEVICE | NORMAL_NC | X -> result (null type = -EINVAL).
    [Theory]
    [InlineData(true, true, false, null)]
    [InlineData(true, true, true, null)]
    [InlineData(true, false, true, null)]
    [InlineData(true, false, false, S2Type.Device)]
    [InlineData(false, true, true, null)]
    [InlineData(false, true, false, S2Type.NormalNC)]
    [InlineData(false, false, false, S2Type.Normal)]
    [InlineData(false, false, true, S2Type.Normal)]
    public void Set_prot_attr_from_6_9_follows_the_table(bool device, bool nc, bool x, S2Type? expected)
    {
        var prot = KVM_PGTABLE_PROT_R | (device ? KVM_PGTABLE_PROT_DEVICE : 0) | (nc ? KVM_PGTABLE_PROT_NORMAL_NC : 0) | (x ? KVM_PGTABLE_PROT_X : 0);
        foreach (var rules in new[] { RuleSet.V6_9, RuleSet.V6_17 })
        {
            var err = Stage2SetProtAttr.Compute(prot, rules, fwb: true, out var attr);
            if (expected is null) Assert.Equal(Errno.EINVAL, err);
            else
            {
                Assert.Equal(Errno.None, err);
                Assert.Equal(expected, attr.Type);
                Assert.Equal(!x, attr.XN);
            }
        }
    }

    [Theory]
    [InlineData(true, true, null)]
    [InlineData(true, false, S2Type.Device)]
    [InlineData(false, true, S2Type.Normal)]
    [InlineData(false, false, S2Type.Normal)]
    public void Set_prot_attr_before_6_9_knows_only_device_and_normal(bool device, bool x, S2Type? expected)
    {
        var prot = KVM_PGTABLE_PROT_R | (device ? KVM_PGTABLE_PROT_DEVICE : 0) | (x ? KVM_PGTABLE_PROT_X : 0);
        var err = Stage2SetProtAttr.Compute(prot, RuleSet.V6_8, false, out var attr);
        if (expected is null) Assert.Equal(Errno.EINVAL, err);
        else Assert.Equal(expected, attr.Type);
    }

    [Fact]
    public void Set_prot_attr_before_6_9_ignores_the_NORMAL_NC_bit()
    {
        Assert.Equal(Errno.None, Stage2SetProtAttr.Compute(KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_NORMAL_NC, RuleSet.V6_8, false, out var attr));
        Assert.Equal(S2Type.Normal, attr.Type);
    }

    [Theory]
    [InlineData(KVM_PGTABLE_PROT_R, true, false)]
    [InlineData(KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_W, true, true)]
    [InlineData(KVM_PGTABLE_PROT_W, false, true)]
    public void S2AP_follows_R_and_W(KvmPgtableProt prot, bool r, bool w)
    {
        Stage2SetProtAttr.Compute(prot, RuleSet.V6_9, true, out var attr);
        Assert.Equal(r, attr.Read);
        Assert.Equal(w, attr.Write);
    }

    [Fact]
    public void SW_bits_are_copied_from_prot()
    {
        Stage2SetProtAttr.Compute(KVM_PGTABLE_PROT_R | KVM_PGTABLE_PROT_SW1 | KVM_PGTABLE_PROT_SW3, RuleSet.V6_9, true, out var attr);
        Assert.Equal((1UL << 56) | (1UL << 58), attr.SwBits);
    }
}

public class MemAttrEncodingTests
{
    // §4.3: type, FWB, MemAttr code, descriptor field value (code << 2).
    [Theory]
    [InlineData(S2Type.Normal, false, 0xF, 0x3C)]
    [InlineData(S2Type.Normal, true, 6, 0x18)]
    [InlineData(S2Type.NormalNC, false, 0x5, 0x14)]
    [InlineData(S2Type.NormalNC, true, 5, 0x14)]
    [InlineData(S2Type.Device, false, 0x1, 0x04)]
    [InlineData(S2Type.Device, true, 1, 0x04)]
    public void MemAttr_codes_match_MT_S2_and_MT_S2_FWB(S2Type type, bool fwb, byte code, ulong field)
    {
        Assert.Equal(code, MemAttr.Code(type, fwb));
        Assert.Equal(type, MemAttr.TypeOf(code, fwb));
        var attr = new Stage2Attr(type, code, false, false, false, 0);
        Assert.Equal(field, Stage2Descriptor.Encode(0, 3, attr) & 0x3C);
    }

    [Theory]
    [InlineData(3, true, true, false, 0x40_0000_07D7UL)]                // page, R+W, executable
    [InlineData(3, true, false, true, 0x40_0000_0757UL | (1UL << 54))]  // page, R, XN
    [InlineData(2, true, true, true, 0x40_0000_07D5UL | (1UL << 54))]   // PMD block: type bit 1 clear
    public void Descriptor_sets_valid_type_memattr_s2ap_sh_af_oa_and_xn(int level, bool r, bool w, bool xn, ulong expected)
    {
        var attr = new Stage2Attr(S2Type.NormalNC, 5, r, w, xn, 0);
        Assert.Equal(expected, Stage2Descriptor.Encode(0x4000000, level, attr));
    }

    [Fact]
    public void Descriptor_without_LPA2_has_SH_inner_and_with_LPA2_has_no_SH_bits()
    {
        var attr = new Stage2Attr(S2Type.Normal, 6, true, false, true, 0);
        Assert.Equal(3UL << 8, Stage2Descriptor.Encode(1, 3, attr) & (3UL << 8));
        Assert.Equal(0UL, Stage2Descriptor.Encode(1, 3, attr, lpa2: true) & (3UL << 8));
    }

    [Fact]
    public void Descriptor_round_trips_pfn_and_memattr()
    {
        var d = Stage2Descriptor.Encode(0x80_0000_1UL, 3, new Stage2Attr(S2Type.Device, 1, true, true, true, 0));
        Assert.Equal(0x80_0000_1UL, Stage2Descriptor.PfnOf(d));
        Assert.Equal(1, Stage2Descriptor.MemAttrOf(d));
    }
}
