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
