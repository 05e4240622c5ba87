// Smart crop: where the interesting part of a photo is. Faces first (an OpenCV frontal-face
// cascade, by default the LBP one, with Thumbor's parameters and its 12% hair allowance), then,
// when there is no face, the strongest corner features. Each face weighs its area, each feature 1;
// the aspect crop is centred on their weighted centre (see make_plan).
//
// Detection runs on a copy of at most kDetectionSide pixels on its long side, faces on a copy of
// that of at most kFaceSide, and the points are scaled back, so its cost does not grow with the
// original's size. At kFaceSide the LBP cascade's 24 px window is 11% of a 3:2 photo's short
// side (Thumbor's min(w, h)/15 on a full-size original asks 6.7%): smaller faces, as in a group
// photo, are not found, and the crop follows the corner features instead.
//
// Thread-safety: cv::CascadeClassifier is not safe to share, so each thread loads its own the first
// time it detects (and reloads only if the cascade path changes).
#pragma once

#include <string>
#include <vector>

#include "transform/plan.h"

namespace cv {
class Mat;
}

namespace thimble::transform {

inline constexpr int kDetectionSide = 600;
inline constexpr int kFaceSide = 320;

// Focal points of `image` (8-bit grey, BGR or BGRA, as shown), in `image`'s own pixel coordinates
// scaled by `scale` (full-size coordinates = detection coordinates × scale). An empty or unreadable
// `face_cascade` skips face detection.
std::vector<FocalPoint> detect_focal_points(const cv::Mat& image, double scale,
                                            const std::string& face_cascade);

// A grey copy of a stored-orientation image, at most kDetectionSide on its long side, turned to
// how it is shown. `scale` receives shown-size pixels per copy pixel.
cv::Mat detection_copy(const cv::Mat& stored, int orientation, Size shown, double& scale);

}  // namespace thimble::transform
