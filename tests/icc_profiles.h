// ICC profiles made with LittleCMS, for the colour-management tests and fuzz seeds.
#pragma once

#include <lcms2.h>

#include <opencv2/core.hpp>
#include <string>

namespace thimble::test {

// `profile` as the bytes an image embeds; the profile is closed.
inline std::string saved_profile(cmsHPROFILE profile) {
  cmsUInt32Number size = 0;
  cmsSaveProfileToMem(profile, nullptr, &size);
  std::string bytes(size, '\0');
  cmsSaveProfileToMem(profile, bytes.data(), &size);
  cmsCloseProfile(profile);
  return bytes;
}

// Display P3, as phones write it: P3 primaries, D65 white, the sRGB tone curve.
inline std::string display_p3_profile() {
  const cmsCIExyY d65 = {0.3127, 0.3290, 1.0};
  const cmsCIExyYTRIPLE p3 = {{0.680, 0.320, 1.0}, {0.265, 0.690, 1.0}, {0.150, 0.060, 1.0}};
  const double srgb_curve[5] = {2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045};
  cmsToneCurve* curve = cmsBuildParametricToneCurve(nullptr, 4, srgb_curve);
  cmsToneCurve* curves[3] = {curve, curve, curve};
  std::string bytes = saved_profile(cmsCreateRGBProfile(&d65, &p3, curves));
  cmsFreeToneCurve(curve);
  return bytes;
}

inline std::string srgb_profile() {
  return saved_profile(cmsCreate_sRGBProfile());
}

// A grey profile (gamma 2.2): not one an RGB image can be converted from.
inline std::string grey_profile() {
  cmsToneCurve* gamma = cmsBuildGamma(nullptr, 2.2);
  std::string bytes = saved_profile(cmsCreateGrayProfile(cmsD50_xyY(), gamma));
  cmsFreeToneCurve(gamma);
  return bytes;
}

// A CMYK profile (its AToB0 table), not the plain formula: cyan ink is also a little red, so a
// conversion through it differs visibly from the inverted-Adobe formula.
inline std::string cmyk_profile() {
  cmsHPROFILE lab = cmsCreateLab4Profile(nullptr);
  cmsHPROFILE srgb = cmsCreate_sRGBProfile();
  cmsHTRANSFORM to_lab =
      cmsCreateTransform(srgb, TYPE_RGB_DBL, lab, TYPE_Lab_DBL, INTENT_RELATIVE_COLORIMETRIC, 0);
  cmsCloseProfile(srgb);
  cmsCloseProfile(lab);
  cmsStage* table = cmsStageAllocCLut16bit(nullptr, 9, 4, 3, nullptr);
  cmsStageSampleCLut16bit(
      table,
      [](const cmsUInt16Number in[], cmsUInt16Number out[], void* cargo) -> cmsInt32Number {
        const double c = in[0] / 65535.0, m = in[1] / 65535.0, y = in[2] / 65535.0,
                     k = in[3] / 65535.0;
        double rgb[3] = {(1 - c) * (1 - k) * 0.8 + 0.2 * (1 - k), (1 - m) * (1 - k),
                         (1 - y) * (1 - k)};
        cmsCIELab lab_value;
        cmsDoTransform(static_cast<cmsHTRANSFORM>(cargo), rgb, &lab_value, 1);
        cmsFloat2LabEncoded(out, &lab_value);
        return 1;
      },
      to_lab, 0);
  cmsPipeline* pipeline = cmsPipelineAlloc(nullptr, 4, 3);
  cmsPipelineInsertStage(pipeline, cmsAT_BEGIN, table);
  cmsHPROFILE profile = cmsCreateProfilePlaceholder(nullptr);
  cmsSetProfileVersion(profile, 2.1);  // written as a lut16 table
  cmsSetDeviceClass(profile, cmsSigOutputClass);
  cmsSetColorSpace(profile, cmsSigCmykData);
  cmsSetPCS(profile, cmsSigLabData);
  cmsWriteTag(profile, cmsSigMediaWhitePointTag, cmsD50_XYZ());
  cmsWriteTag(profile, cmsSigAToB0Tag, pipeline);
  cmsPipelineFree(pipeline);
  cmsDeleteTransform(to_lab);
  return saved_profile(profile);
}

// A grey profile with a linear tone curve (gamma 1): its greys are lighter in sRGB.
inline std::string linear_grey_profile() {
  cmsToneCurve* linear = cmsBuildGamma(nullptr, 1.0);
  std::string bytes = saved_profile(cmsCreateGrayProfile(cmsD50_xyY(), linear));
  cmsFreeToneCurve(linear);
  return bytes;
}

// `samples` converted through `profile` to sRGB BGR by LittleCMS directly: what a thumbnail of
// them should show. `format`: TYPE_CMYK_8_REV, TYPE_GRAY_8, ...
inline cv::Mat through_profile(const cv::Mat& samples, const std::string& profile,
                               cmsUInt32Number format) {
  cmsHPROFILE from =
      cmsOpenProfileFromMem(profile.data(), static_cast<cmsUInt32Number>(profile.size()));
  cmsHPROFILE srgb = cmsCreate_sRGBProfile();
  cmsHTRANSFORM t = cmsCreateTransform(from, format, srgb, TYPE_BGR_8, INTENT_PERCEPTUAL, 0);
  cv::Mat out(samples.size(), CV_8UC3);
  cv::Mat in = samples.clone();
  cmsDoTransform(t, in.data, out.data, static_cast<cmsUInt32Number>(in.total()));
  cmsDeleteTransform(t);
  cmsCloseProfile(srgb);
  cmsCloseProfile(from);
  return out;
}

// `bgr` (sRGB) expressed in `profile`: what a P3 camera stores for the same colours.
inline cv::Mat in_profile(const cv::Mat& bgr, const std::string& profile) {
  cmsHPROFILE srgb = cmsCreate_sRGBProfile();
  cmsHPROFILE target =
      cmsOpenProfileFromMem(profile.data(), static_cast<cmsUInt32Number>(profile.size()));
  cmsHTRANSFORM t = cmsCreateTransform(srgb, TYPE_BGR_8, target, TYPE_BGR_8, INTENT_PERCEPTUAL, 0);
  cv::Mat out = bgr.clone();
  cmsDoTransform(t, out.data, out.data, static_cast<cmsUInt32Number>(out.total()));
  cmsDeleteTransform(t);
  cmsCloseProfile(target);
  cmsCloseProfile(srgb);
  return out;
}

}  // namespace thimble::test
