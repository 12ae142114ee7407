// tf_flags of tfhd and tr_flags of trun (ISO/IEC 14496-12 §8.8.7, §8.8.8): what the fragment rewriters test.
export const TFHD_BASE_DATA_OFFSET = 0x000001;
export const TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002;
export const TFHD_DEFAULT_DURATION = 0x000008;
export const TFHD_DEFAULT_SIZE = 0x000010;
export const TFHD_DEFAULT_FLAGS = 0x000020;
export const TFHD_DURATION_IS_EMPTY = 0x010000;
export const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;
export const TRUN_DATA_OFFSET = 0x000001;
export const TRUN_FIRST_SAMPLE_FLAGS = 0x000004;
export const TRUN_DURATION = 0x000100;
export const TRUN_SIZE = 0x000200;
export const TRUN_FLAGS = 0x000400;
export const TRUN_CTO = 0x000800;
